import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './errors';
import type { TlsMaterial, TlsVersion } from './types';

/**
 * The certificate and key files of the engine's listeners, read and checked once, when the
 * configuration is loaded, so a bad file stops the engine before it listens with a message
 * naming the file and the config key (the listeners themselves: src/transport/tls.ts).
 */

/** Versions `tls.min_version` takes; TLSv1.2 by default (TLSv1.0/1.1 are deprecated, RFC 8996). */
export const TLS_VERSIONS: readonly TlsVersion[] = ['TLSv1.2', 'TLSv1.3'];
export const DEFAULT_TLS_MIN_VERSION: TlsVersion = 'TLSv1.2';

/** Where a setting came from, for messages: `config.yaml: iii-http.tls.cert_file`, `environment variable III_TLS_KEY_FILE`. */
export interface TlsSources {
  cert: string;
  key: string;
}

/**
 * Reads the certificate chain and private key (PEM) and checks that they can serve: the first
 * certificate parses, the key parses (an encrypted key is refused: there is no passphrase
 * setting), the key belongs to the certificate, and Node builds a TLS context from them.
 * Throws a ConfigError naming the setting and the file.
 */
export function readTlsMaterial(
  files: { certFile: string; keyFile: string; minVersion: TlsVersion },
  from: TlsSources,
): TlsMaterial {
  const cert = readPem(files.certFile, from.cert);
  const key = readPem(files.keyFile, from.key);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new ConfigError(
      `${from.cert}: "${files.certFile}" is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    const encrypted = (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE';
    throw new ConfigError(
      encrypted
        ? `${from.key}: "${files.keyFile}" is an encrypted private key; give an unencrypted one (e.g. openssl pkey -in key.pem -out plain.pem)`
        : `${from.key}: "${files.keyFile}" is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      `${from.key}: the private key in "${files.keyFile}" does not match the certificate in "${files.certFile}" (${from.cert})`,
    );
  }
  try {
    createSecureContext({ cert, key, minVersion: files.minVersion });
  } catch (err) {
    throw new ConfigError(
      `${from.cert}: "${files.certFile}" and "${files.keyFile}" cannot serve TLS: ${(err as Error).message}`,
    );
  }
  return { certFile: files.certFile, keyFile: files.keyFile, cert, key, minVersion: files.minVersion };
}

/** Reads a CA bundle (PEM) a node trusts when it dials another node; its first certificate must parse. */
export function readCaFile(file: string, from: string): Buffer {
  const pem = readPem(file, from);
  try {
    new X509Certificate(pem);
  } catch {
    throw new ConfigError(`${from}: "${file}" is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  }
  return pem;
}

function readPem(file: string, from: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (err as Error).message;
    throw new ConfigError(`${from}: cannot read "${file}": ${why}`);
  }
}
