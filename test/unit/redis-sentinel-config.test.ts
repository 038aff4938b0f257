import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEndpoint, parseSentinels, redisOptions } from '../../src/cluster/redis-options';
import { clusterRedis, isClusterMode, redisTarget } from '../../src/cluster/redis-target';
import { loadConfig } from '../../src/config/load';
import { configError, loadYamlIn } from '../support/config-files';

/**
 * Sentinel mode, from config and environment to ioredis options: the sentinels and the
 * primary's name come together or not at all, a bad entry is a ConfigError naming it, and no
 * message holds a password.
 */

const SECRET = 'sentinel-s3cret';
const DATA_SECRET = 'data-s3cret';
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-sentinel-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loadYaml = (yaml: string, env?: NodeJS.ProcessEnv) => loadYamlIn(dir, yaml, env);

const SENTINEL_ENV = { III_REDIS_SENTINELS: 's1:26379, s2:26380,[::1]:26381', III_REDIS_SENTINEL_NAME: 'mymaster' };

describe('parseSentinels', () => {
  test('reads host:port entries separated by commas, trims them, defaults the port to 26379, takes IPv6 in brackets', () => {
    expect(parseSentinels(' a:1 ,b,[::1]:26380')).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    expect(parseSentinels(['10.0.0.5:26379'])).toEqual([{ host: '10.0.0.5', port: 26379 }]);
  });

  test('refuses an empty list, an empty entry, a URL, a missing host and a bad port, naming the entry', () => {
    expect(() => parseSentinels('')).toThrow(/no sentinel given/);
    for (const bad of ['a:1,', ':26379', 'redis://a:26379', 'a:0', 'a:65536', 'a:port', 'a b:1', 'a:1:2']) {
      const entry = bad === 'a:1,' ? '' : bad;
      expect(() => parseSentinels(bad)).toThrow(`sentinel ${JSON.stringify(entry)} is not host:port`);
    }
  });
});

describe('redisOptions in Sentinel mode', () => {
  const sentinel = { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: SECRET };

  test('gives ioredis the sentinels, the name, both passwords, and failover following (detector, READONLY reconnect)', () => {
    const options = redisOptions({ sentinel, password: DATA_SECRET });
    expect(options).toMatchObject({
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'mymaster',
      role: 'master',
      sentinelPassword: SECRET,
      password: DATA_SECRET,
      failoverDetector: true,
    });
    expect(options.host).toBeUndefined();
    expect(options.tls).toBeUndefined();
    // An old primary back as a replica answers writes with READONLY: reconnect and resend (2).
    expect(options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(options.reconnectOnError?.(new Error('ERR wrong number of arguments'))).toBe(false);
  });

  test('tls: true turns TLS on for the sentinels and the data nodes, with the CA file when given', () => {
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, 'pem');
    expect(redisOptions({ sentinel, tls: true })).toMatchObject({
      tls: {},
      sentinelTLS: {},
      enableTLSForSentinelMode: true,
    });
    expect(redisOptions({ sentinel, tls: true, tlsCaFile: caFile })).toMatchObject({
      tls: { ca: Buffer.from('pem') },
      sentinelTLS: { ca: Buffer.from('pem') },
    });
  });

  test('describeEndpoint names the primary and the sentinels, never a password', () => {
    const text = describeEndpoint({
      sentinel: {
        ...sentinel,
        sentinels: [
          { host: 's1', port: 1 },
          { host: '::1', port: 2 },
        ],
      },
      password: DATA_SECRET,
    });
    expect(text).toBe('primary "mymaster" of sentinels s1:1,[::1]:2');
    expect(describeEndpoint({ url: `redis://:${DATA_SECRET}@h:1` })).toBe('redis://:***@h:1');
  });
});

describe('config: Sentinel mode', () => {
  test('the environment turns it on: sentinels, name, sentinel password, data password; cluster mode is on', () => {
    const { config } = loadConfig({
      env: { ...SENTINEL_ENV, III_REDIS_SENTINEL_PASSWORD: ` ${SECRET}`, III_REDIS_PASSWORD: DATA_SECRET },
    });
    expect(isClusterMode(config.cluster)).toBe(true);
    expect(config.cluster.redisUrl).toBeUndefined();
    expect(clusterRedis(config.cluster)).toEqual({
      sentinel: {
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        name: 'mymaster',
        password: ` ${SECRET}`,
      },
      password: DATA_SECRET,
    });
    // Modules without a URL of their own share the cluster's sentinels and its key prefix.
    expect(redisTarget('iii-state', {}, config.cluster)).toMatchObject({
      sentinel: { name: 'mymaster' },
      keyPrefix: 'iii:',
    });
    expect(redisTarget('iii-state', { redis_url: '' }, config.cluster)).toMatchObject({
      sentinel: { name: 'mymaster' },
    });
    expect(redisTarget('iii-state', { redis_url: 'redis://other:6379' }, config.cluster)).toMatchObject({
      url: 'redis://other:6379',
    });
    // Cluster mode makes the storage modules use Redis.
    expect(isClusterMode(loadConfig({ env: {} }).config.cluster)).toBe(false);
  });

  test('the file takes redis_sentinels as a string or a list, redis_sentinel_name and redis_tls', () => {
    const { config } = loadYaml(
      'cluster:\n  redis_sentinels: [ "a:1", "b:2" ]\n  redis_sentinel_name: mymaster\n  redis_tls: true\n',
    );
    expect(clusterRedis(config.cluster)).toEqual({
      sentinel: {
        sentinels: [
          { host: 'a', port: 1 },
          { host: 'b', port: 2 },
        ],
        name: 'mymaster',
      },
      tls: true,
    });
    const fromString = loadYaml('cluster:\n  redis_sentinels: "a:1,b"\n  redis_sentinel_name: m\n').config;
    expect(fromString.cluster.redisSentinels).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 26379 },
    ]);
    // `${VAR:}` that expands to nothing leaves Sentinel mode off.
    expect(
      isClusterMode(
        loadYaml('cluster:\n  redis_sentinels: "${NONE:}"\n  redis_sentinel_name: "${NONE:}"\n').config.cluster,
      ),
    ).toBe(false);
  });

  test('III_REDIS_TLS=true sets TLS; another value is refused', () => {
    expect(loadConfig({ env: { ...SENTINEL_ENV, III_REDIS_TLS: 'true' } }).config.cluster.redisTls).toBe(true);
    expect(configError(() => loadConfig({ env: { ...SENTINEL_ENV, III_REDIS_TLS: 'yes' } })).message).toContain(
      'environment variable III_REDIS_TLS: expected one of "true", "false"',
    );
  });

  test('sentinels without a name, or a name without sentinels, is a ConfigError saying what to add', () => {
    expect(configError(() => loadConfig({ env: { III_REDIS_SENTINELS: 'a:1' } })).message).toMatch(
      /III_REDIS_SENTINELS is set without the primary's name: set cluster.redis_sentinel_name \/ III_REDIS_SENTINEL_NAME/,
    );
    expect(configError(() => loadConfig({ env: { III_REDIS_SENTINEL_NAME: 'mymaster' } })).message).toMatch(
      /III_REDIS_SENTINEL_NAME is set without sentinels/,
    );
    expect(configError(() => loadYaml('cluster:\n  redis_sentinels: a:1\n')).message).toMatch(
      /without the primary's name/,
    );
  });

  test('a malformed sentinel entry is a ConfigError naming the variable or key and the entry', () => {
    expect(
      configError(() => loadConfig({ env: { III_REDIS_SENTINELS: 'a:1,b:x', III_REDIS_SENTINEL_NAME: 'm' } })).message,
    ).toBe(
      'environment variable III_REDIS_SENTINELS: sentinel "b:x" is not host:port (expected e.g. 10.0.0.5:26379 or [::1]:26379, entries separated by commas)',
    );
    expect(
      configError(() => loadYaml('cluster:\n  redis_sentinels: ["a:1", "redis://b:2"]\n  redis_sentinel_name: m\n'))
        .message,
    ).toMatch(/cluster.redis_sentinels: sentinel "redis:\/\/b:2" is not host:port/);
    expect(
      configError(() => loadYaml('cluster:\n  redis_sentinels: {a: 1}\n  redis_sentinel_name: m\n')).message,
    ).toMatch(/redis_sentinels.*expected host:port,host:port/);
  });

  test('a URL and sentinels from the same place are a ConfigError; the environment replaces the file', () => {
    expect(configError(() => loadConfig({ env: { ...SENTINEL_ENV, III_REDIS_URL: 'redis://h:1' } })).message).toMatch(
      /III_REDIS_URL and III_REDIS_SENTINELS are both set/,
    );
    expect(
      configError(() =>
        loadYaml('cluster:\n  redis_url: redis://h:1\n  redis_sentinels: a:1\n  redis_sentinel_name: m\n'),
      ).message,
    ).toMatch(/redis_url and cluster.redis_sentinels are both set/);
    // config/cluster.yaml writes a default redis_url: sentinels from the environment win over it.
    const repoRoot = path.resolve(__dirname, '../..');
    const shipped = loadConfig({ path: path.join(repoRoot, 'config/cluster.yaml'), env: SENTINEL_ENV }).config;
    expect(shipped.cluster.redisUrl).toBeUndefined();
    expect(clusterRedis(shipped.cluster)).toMatchObject({ sentinel: { name: 'mymaster' } });
    // And the other way round: a URL from the environment replaces the file's sentinels.
    const url = loadYaml('cluster:\n  redis_sentinels: a:1\n  redis_sentinel_name: m\n', {
      III_REDIS_URL: 'redis://h:1',
    }).config;
    expect(clusterRedis(url.cluster)).toEqual({ url: 'redis://h:1' });
  });

  test('redis_tls without sentinels is a ConfigError pointing at rediss://', () => {
    expect(configError(() => loadYaml('cluster:\n  redis_url: redis://h:1\n  redis_tls: true\n')).message).toMatch(
      /redis_tls \/ III_REDIS_TLS is for Sentinel and Cluster mode; with a URL, write rediss:\/\//,
    );
  });

  test('no error message holds the sentinel or data password', () => {
    const env = { III_REDIS_SENTINEL_PASSWORD: SECRET, III_REDIS_PASSWORD: DATA_SECRET };
    for (const extra of [
      { III_REDIS_SENTINELS: 'a:1' },
      { III_REDIS_SENTINELS: 'a:x', III_REDIS_SENTINEL_NAME: 'm' },
      { III_REDIS_SENTINEL_NAME: 'm' },
    ]) {
      const message = configError(() => loadConfig({ env: { ...env, ...extra } })).message;
      expect(message).not.toContain(SECRET);
      expect(message).not.toContain(DATA_SECRET);
    }
  });
});
