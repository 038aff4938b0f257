import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PEM files of a throwaway CA and a server certificate it signed, for 127.0.0.1 and localhost. */
export interface TestCerts {
  dir: string;
  /** The CA certificate: what a client trusts (III_REDIS_TLS_CA_FILE). */
  ca: string;
  cert: string;
  key: string;
  /** Removes the directory. */
  remove(): void;
}

/**
 * Makes the certificates with the system `openssl` CLI in a temp dir (P-256 keys: fast to make).
 * The server certificate names 127.0.0.1 and localhost, so hostname checks pass on loopback.
 */
export function makeTestCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-certs-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=iii test CA',
  );
  openssl('req', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    '2',
    '-extfile',
    file('ext.cnf'),
  );
  return {
    dir,
    ca: file('ca.crt'),
    cert: file('server.crt'),
    key: file('server.key'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
