import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { explainRedisError } from '../../src/cluster/redis-errors';
import { redisOptions } from '../../src/cluster/redis-options';
import { clusterRedis, redisTarget } from '../../src/cluster/redis-target';
import { loadConfig } from '../../src/config/load';
import { configError, loadYamlIn } from '../support/config-files';

/**
 * Redis URLs, passwords and TLS settings, from config and environment to ioredis options; and
 * every message that shows a URL shows it without its password.
 */

const SECRET = 'hunter2-s3cret';
let dir: string;
let caFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-redis-options-'));
  caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loadYaml = (yaml: string, env?: NodeJS.ProcessEnv) => loadYamlIn(dir, yaml, env);

describe('redisOptions', () => {
  test('reads host, port, database, user and percent-encoded password from the URL', () => {
    expect(redisOptions({ url: `redis://app:${encodeURIComponent('p@ss/w:rd')}@cache.internal:6380/2` })).toEqual({
      host: 'cache.internal',
      port: 6380,
      db: 2,
      username: 'app',
      password: 'p@ss/w:rd',
    });
  });

  test('defaults to port 6379, no user, no password, no TLS; an IPv6 address loses its brackets; ?family=6 becomes a number', () => {
    expect(redisOptions({ url: 'redis://[::1]?family=6' })).toEqual({ host: '::1', port: 6379, family: 6 });
  });

  test('the endpoint password replaces the URL one (III_REDIS_PASSWORD)', () => {
    expect(redisOptions({ url: 'redis://user:old@h', password: SECRET })).toMatchObject({
      username: 'user',
      password: SECRET,
    });
  });

  test('rediss:// turns TLS on: the system store without a CA file, the file contents with one', () => {
    expect(redisOptions({ url: 'rediss://h:6380' }).tls).toEqual({});
    expect(redisOptions({ url: 'rediss://h:6380', tlsCaFile: caFile }).tls).toEqual({ ca: fs.readFileSync(caFile) });
    expect(redisOptions({ url: 'redis://h', tlsCaFile: caFile }).tls).toBeUndefined();
  });

  test('a bad URL, path or %-escape is refused without echoing the password', () => {
    for (const url of [
      `http://:${SECRET}@h`,
      `redis://:${SECRET}@h/zero`,
      `redis://:${SECRET}%zz@h`,
      `redis//:${SECRET}@h`,
      `redis:/:${SECRET}@h`,
    ]) {
      let message = '';
      try {
        redisOptions({ url });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/Redis URL/);
      expect(message).not.toContain(SECRET);
    }
  });

  test('an unreadable CA file is an error naming the file and the setting', () => {
    expect(() => redisOptions({ url: 'rediss://h', tlsCaFile: path.join(dir, 'missing.pem') })).toThrow(
      /cannot read the Redis TLS CA file .*missing\.pem \(III_REDIS_TLS_CA_FILE/,
    );
  });
});

describe('explainRedisError', () => {
  const withCode = (code: string, message: string) => Object.assign(new Error(message), { code });

  test('NOAUTH and WRONGPASS say where the password goes', () => {
    expect(
      explainRedisError(new Error('NOAUTH HELLO must be called with the client already authenticated'), false),
    ).toMatchObject({ kind: 'auth', text: expect.stringMatching(/III_REDIS_PASSWORD/) });
    expect(
      explainRedisError(new Error('WRONGPASS invalid username-password pair or user is disabled.'), true),
    ).toMatchObject({ kind: 'auth', text: expect.stringMatching(/^Redis refused/) });
  });

  test('a rediss:// handshake that times out (a plain port) is a TLS problem; a plain timeout is not', () => {
    expect(explainRedisError(withCode('ETIMEDOUT', 'connect ETIMEDOUT'), true)).toMatchObject({
      kind: 'tls',
      text: expect.stringMatching(/TLS handshake .*for a plain port use redis:\/\//),
    });
    expect(explainRedisError(withCode('ETIMEDOUT', 'connect ETIMEDOUT'), false)).toEqual({
      kind: 'other',
      text: 'connect ETIMEDOUT',
    });
  });

  test('a certificate whose name does not match is a TLS problem naming the CA setting', () => {
    expect(
      explainRedisError(
        withCode('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
        true,
      ).text,
    ).toMatch(/III_REDIS_TLS_CA_FILE/);
  });
});

describe('cluster and module endpoints', () => {
  const url = 'rediss://:inurl@main:6380';
  // caFile is set in beforeAll, after this block is defined.
  const settings = () => ({ redisUrl: url, redisPassword: SECRET, redisTlsCaFile: caFile, keyPrefix: 'iii:' });

  test("III_REDIS_PASSWORD and the CA file go with the cluster's URL", () => {
    expect(clusterRedis(settings())).toEqual({ url, password: SECRET, tlsCaFile: caFile });
    expect(clusterRedis({ keyPrefix: 'iii:' })).toBeUndefined();
  });

  test("a module's own URL gets III_REDIS_PASSWORD (replacing its own), the CA file and the cluster prefix", () => {
    expect(redisTarget('iii-state', { redis_url: 'rediss://:own@other:6380' }, settings())).toEqual({
      url: 'rediss://:own@other:6380',
      password: SECRET,
      tlsCaFile: caFile,
      keyPrefix: 'iii:',
    });
    expect(redisTarget('iii-state', { redis_url: 'rediss://other:6380' }, settings())).toEqual({
      url: 'rediss://other:6380',
      password: SECRET,
      tlsCaFile: caFile,
      keyPrefix: 'iii:',
    });
    expect(redisTarget('iii-state', {}, settings())).toEqual({
      url,
      password: SECRET,
      tlsCaFile: caFile,
      keyPrefix: 'iii:',
    });
  });
});

describe('config: Redis password and TLS', () => {
  test('III_REDIS_PASSWORD is taken as is (spaces kept); III_REDIS_TLS_CA_FILE sets the CA', () => {
    const { config, warnings } = loadConfig({
      env: { III_REDIS_URL: 'rediss://r:6380', III_REDIS_PASSWORD: ` ${SECRET} `, III_REDIS_TLS_CA_FILE: caFile },
    });
    expect(config.cluster).toEqual({
      keyPrefix: 'iii:',
      bus: 'redis',
      redisUrl: 'rediss://r:6380',
      redisPassword: ` ${SECRET} `,
      redisTlsCaFile: caFile,
    });
    expect(warnings).toEqual([]);
  });

  test('cluster.redis_tls_ca_file in the file; with a plain redis:// URL it is a warning', () => {
    const { config, warnings } = loadYaml(`cluster:\n  redis_url: redis://r:6379\n  redis_tls_ca_file: ${caFile}\n`);
    expect(config.cluster.redisTlsCaFile).toBe(caFile);
    expect(warnings).toContain(
      `cluster.redis_tls_ca_file (${caFile}) is used for rediss:// URLs only; cluster.redis_url is redis:// (no TLS)`,
    );
  });

  test('an unreadable CA file is a config error at load', () => {
    const missing = path.join(dir, 'nope.pem');
    expect(configError(() => loadConfig({ env: { III_REDIS_TLS_CA_FILE: missing } })).message).toMatch(
      new RegExp(
        `cluster.redis_tls_ca_file / III_REDIS_TLS_CA_FILE: cannot read ${missing.replace(/[.\\/]/g, '\\$&')}: ENOENT`,
      ),
    );
  });

  test('a Redis URL of the wrong form is refused, from the environment or the file, without its password', () => {
    const fromEnv = configError(() => loadConfig({ env: { III_REDIS_URL: `http://:${SECRET}@r:6379` } })).message;
    expect(fromEnv).toBe(
      'environment variable III_REDIS_URL: expected a redis:// or rediss:// URL, got "http://:***@r:6379"',
    );
    const fromFile = configError(() => loadYaml(`cluster:\n  redis_url: "https://app:${SECRET}@r:6379"\n`)).message;
    expect(fromFile).toContain('got "https://app:***@r:6379"');
    expect(fromFile).not.toContain(SECRET);
    const noHost = configError(() => loadConfig({ env: { III_REDIS_URL: `redis:/:${SECRET}@r` } })).message;
    expect(noHost).toBe(
      'cluster.redis_url / III_REDIS_URL: Redis URL redis:***@r: no host (expected redis://host:port)',
    );
  });
});
