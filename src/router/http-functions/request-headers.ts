import { randomUUID } from 'node:crypto';
import type { HttpInvocation } from '../../protocol/messages';
import type { EngineError } from '../../protocol/errors';
import { authHeader, readAuthSecret } from './auth';

/** Headers the engine frames itself; a registration's own values for them are dropped. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding']);

/**
 * Header values go out as UTF-8 bytes, as iii sends them; Node writes header strings as latin1,
 * so each UTF-8 byte becomes one latin1 character.
 */
function wireValue(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

export interface RequestHeaderInput {
  functionId: string;
  invocation: HttpInvocation;
  url: URL;
  body: Buffer;
  timestampSeconds: number;
  env: NodeJS.ProcessEnv;
}

/**
 * The request headers of iii §6.2 as a flat raw list [name, value, ...], in iii's order. A raw
 * list keeps names as written and lets a custom header be added next to ours (not replace it),
 * but Node then adds neither Host nor Content-Length, so they are set here.
 */
export function buildRequestHeaders(input: RequestHeaderInput): string[] | EngineError {
  const { invocation, url, body, timestampSeconds } = input;
  const custom = Object.entries(invocation.headers ?? {}).filter(([name]) => !FRAMING_HEADERS.has(name.toLowerCase()));
  const hasCustomHost = custom.some(([name]) => name.toLowerCase() === 'host');
  const pairs: Array<[string, string]> = [];
  if (!hasCustomHost) pairs.push(['Host', url.host]);
  pairs.push(
    ['Content-Length', String(body.length)],
    ['Content-Type', 'application/json'],
    ['x-iii-Function-Path', input.functionId],
    ['x-iii-Invocation-ID', randomUUID()],
    ['x-iii-Timestamp', String(timestampSeconds)],
    ...custom,
  );
  if (invocation.auth !== undefined) {
    // Read at call time, so a rotated secret is picked up without re-registering.
    const secret = readAuthSecret(invocation.auth, input.env);
    if (typeof secret !== 'string') return secret;
    pairs.push(authHeader(invocation.auth, secret, timestampSeconds, body));
  }
  return pairs.flatMap(([name, value]) => [name, wireValue(value)]);
}
