import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterOptions, describeEndpoint, parseClusterNodes, slotPrefix } from '../../src/cluster/redis-options';
import { clusterRedis, isClusterMode } from '../../src/cluster/redis-target';
import { loadConfig } from '../../src/config/load';
import { configError, loadYamlIn } from '../support/config-files';

/**
 * Cluster mode (issue 14 #2), from config and environment to the endpoint: one Redis only (a
 * URL, sentinels or cluster nodes), a bad entry is a ConfigError naming it, no message holds
 * the password.
 */

const SECRET = 'cluster-s3cret';
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-rcluster-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loadYaml = (yaml: string, env?: NodeJS.ProcessEnv) => loadYamlIn(dir, yaml, env);

describe('parseClusterNodes', () => {
  test('reads host:port entries, defaults the port to 6379, takes IPv6 in brackets', () => {
    expect(parseClusterNodes(' a:7000 ,b,[::1]:7001')).toEqual([
      { host: 'a', port: 7000 },
      { host: 'b', port: 6379 },
      { host: '::1', port: 7001 },
    ]);
  });

  test('refuses an empty list and a bad entry, naming it', () => {
    expect(() => parseClusterNodes('')).toThrow(/no cluster node given/);
    expect(() => parseClusterNodes('a:1,redis://b:2')).toThrow(
      'cluster node "redis://b:2" is not host:port (expected e.g. 10.0.0.5:6379',
    );
  });
});

describe('config: Cluster mode', () => {
  test('III_REDIS_CLUSTER_NODES turns Cluster mode on and replaces the file URL; password and TLS go to every node', () => {
    const { config } = loadConfig({
      env: { III_REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', III_REDIS_PASSWORD: SECRET, III_REDIS_TLS: 'true' },
    });
    expect(config.cluster.redisUrl).toBeUndefined();
    expect(isClusterMode(config.cluster)).toBe(true);
    const endpoint = clusterRedis(config.cluster)!;
    expect(endpoint.cluster?.nodes).toEqual([
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
    ]);
    expect(clusterOptions(endpoint).redisOptions).toEqual({ password: SECRET, tls: {} });
    expect(describeEndpoint(endpoint)).toBe('Redis Cluster n1:7000,n2:7001 (TLS)');
  });

  test('cluster.redis_cluster_nodes in the file, as a list', () => {
    const { config } = loadYaml('cluster:\n  redis_cluster_nodes:\n    - n1:7000\n    - n2\n');
    expect(config.cluster.redisClusterNodes).toEqual([
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 6379 },
    ]);
  });

  test('a bad entry, or two Redis at once, is a ConfigError saying so without the password', () => {
    expect(configError(() => loadConfig({ env: { III_REDIS_CLUSTER_NODES: 'a:1,b:x' } })).message).toContain(
      'environment variable III_REDIS_CLUSTER_NODES: cluster node "b:x" is not host:port',
    );
    const both = configError(() =>
      loadConfig({
        env: { III_REDIS_CLUSTER_NODES: 'a:1', III_REDIS_URL: `redis://:${SECRET}@h:1` },
      }),
    ).message;
    expect(both).toContain('III_REDIS_CLUSTER_NODES and III_REDIS_URL are both set');
    expect(both).not.toContain(SECRET);
    expect(
      configError(() => loadYaml('cluster:\n  redis_url: redis://h:1\n  redis_cluster_nodes: a:1\n')).message,
    ).toContain('cluster.redis_cluster_nodes and cluster.redis_url are both set');
  });
});

describe('slotPrefix', () => {
  test('puts a group of keys in one slot on a Redis Cluster, and keeps the old names elsewhere', () => {
    const cluster = { cluster: { nodes: [{ host: '127.0.0.1', port: 1 }] } };
    expect(slotPrefix(cluster, 'iii:', 'members')).toBe('iii:{members}:');
    expect(slotPrefix(cluster, '', 'members')).toBe('{members}:');
    expect(slotPrefix({ url: 'redis://127.0.0.1:6379' }, 'iii:', 'members')).toBe('iii:');
    expect(slotPrefix({ sentinel: { sentinels: [{ host: 's', port: 1 }], name: 'p' } }, 'iii:', 'members')).toBe(
      'iii:',
    );
  });
});
