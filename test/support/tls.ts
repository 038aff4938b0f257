import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A throwaway CA and a server certificate it signed, valid for 127.0.0.1, ::1 and localhost (or
 * the subjectAltName entries given, `DNS:name` / `IP:address`), made with the system `openssl`
 * CLI (EC P-256: fast to generate) in a temp dir.
 */
export interface TestCertificates {
  dir: string;
  /** The CA certificate (PEM): what clients trust (`ca`, NODE_EXTRA_CA_CERTS, III_TLS_CA_FILE). */
  caFile: string;
  /** The server certificate (PEM) and its unencrypted key. */
  certFile: string;
  keyFile: string;
  ca: Buffer;
  remove(): void;
}

/** Days the certificates are valid: a test run never comes close. */
const VALID_DAYS = '2';

export function makeCertificates(
  sans: readonly string[] = ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost'],
): TestCertificates {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-tls-'));
  const at = (name: string): string => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  fs.writeFileSync(
    at('ca.cnf'),
    '[req]\ndistinguished_name=dn\nx509_extensions=ca\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
  );
  fs.writeFileSync(
    at('server.ext'),
    `subjectAltName=${sans.join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-days',
    VALID_DAYS,
    '-subj',
    '/CN=iii-cluster test CA',
    '-config',
    at('ca.cnf'),
  ]);
  openssl([
    'req',
    ...ec,
    '-keyout',
    at('server.key'),
    '-out',
    at('server.csr'),
    '-subj',
    '/CN=localhost',
    '-config',
    at('ca.cnf'),
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-out',
    at('server.pem'),
    '-days',
    VALID_DAYS,
    '-extfile',
    at('server.ext'),
  ]);
  return {
    dir,
    caFile: at('ca.pem'),
    certFile: at('server.pem'),
    keyFile: at('server.key'),
    ca: fs.readFileSync(at('ca.pem')),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Error(
        'the TLS tests make their certificates with the openssl CLI, which is not on PATH (apt-get install openssl)',
      );
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}
