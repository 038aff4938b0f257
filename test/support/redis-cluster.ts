import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './ports';
import { killGroup, spawnGroup, stopGroup } from './process-group';

const INSTALL_HINT =
  'redis-server is not installed. The Redis Cluster tests start a private three-primary cluster ' +
  '(`cluster-enabled yes`, then `redis-cli --cluster create`) on free ports; install it with `apt-get install -y redis-server` (Debian/Ubuntu), or set REDIS_SERVER_BIN to its path.';

/** Sharded pub/sub (SSUBSCRIBE/SPUBLISH) came with Redis 7. */
const MIN_MAJOR = 7;

/**
 * A private Redis Cluster on free loopback ports: three primaries (slots split evenly by
 * `redis-cli --cluster create`), no replicas. Every server is its own process group; `stop`
 * ends them all (SIGTERM, then SIGKILL of the group after a deadline) and removes the temp
 * dir, and they are SIGKILLed if the test process exits without calling it.
 */
export interface TestRedisCluster {
  /** `host:port` of each node, comma-separated: III_REDIS_CLUSTER_NODES. */
  nodes: string;
  ports: number[];
  /**
   * `CLUSTER FAILOVER` on the replica of the shard that owns `key`'s slot (needs `replicas: 1`);
   * resolves once the replica reports itself primary, with both ports.
   */
  failoverShardOf(key: string): Promise<{ oldPrimary: number; newPrimary: number }>;
  /**
   * kill -9 of the primary of `key`'s shard (needs `replicas: 1`); resolves once its replica is
   * primary (after cluster-node-timeout and an election), with both ports and when it was killed.
   */
  killPrimaryOf(key: string): Promise<{ killed: number; replica: number; killedAt: number }>;
  /** The port of the primary serving `key`'s slot now. */
  primaryOf(key: string): Promise<number>;
  stop(): Promise<void>;
}

/** `replicas`: replicas per primary (1 for failover tests: six servers in all). */
export async function startRedisCluster(options: { replicas?: 0 | 1 } = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (version.error) throw new Error(INSTALL_HINT);
  const major = Number(/v=(\d+)\./.exec(version.stdout)?.[1] ?? 0);
  if (major < MIN_MAJOR)
    throw new Error(`${bin} is Redis ${major}; the Cluster tests need Redis ${MIN_MAJOR}+ (sharded pub/sub)`);
  const cli = process.env['REDIS_CLI_BIN'] ?? 'redis-cli';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-rcluster-'));
  const procs: ChildProcess[] = [];
  const byPort = new Map<number, ChildProcess>();
  const stop = async () => {
    await Promise.all(procs.map(stopGroup));
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    const ports = await Promise.all(Array.from({ length: 3 * (1 + replicas) }, () => freePort()));
    await Promise.all(
      ports.map(async (port) => {
        const nodeDir = path.join(dir, `node-${port}`);
        fs.mkdirSync(nodeDir);
        const args = [
          ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
          ...['--dir', nodeDir, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
          ...['--cluster-node-timeout', '2000'],
        ];
        const proc = spawnGroup(bin, args);
        procs.push(proc);
        byPort.set(port, proc);
        await waitForPort(port, proc, 10_000, `redis-server (cluster node ${port})`);
      }),
    );
    const create = spawnSync(
      cli,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(
        `redis-cli --cluster create failed: ${create.error?.message ?? ''}${create.stdout}${create.stderr}`,
      );
    await Promise.all(ports.map((port) => waitForClusterOk(port, ports.length, replicas, 20_000)));
    return {
      nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
      ports,
      failoverShardOf: (key) => failoverShardOf(ports[0]!, key),
      killPrimaryOf: (key) => killPrimaryOf(byPort, key),
      primaryOf: async (key) => (await shardOf(runningPort(byPort), key, false)).primary.port,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Waits until a node reports `cluster_state:ok` (every slot served) and knows all `count` nodes;
 * with replicas, also until a primary has its replicas connected, or a replica is in sync.
 */
async function waitForClusterOk(port: number, count: number, replicas: number, timeoutMs: number): Promise<void> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  const deadline = Date.now() + timeoutMs;
  try {
    await redis.connect();
    for (;;) {
      const info = await redis.cluster('INFO');
      const replication = await redis.info('replication');
      const inSync =
        replicas === 0 ||
        (replication.includes('role:master')
          ? replication.includes(`connected_slaves:${replicas}`)
          : replication.includes('master_link_status:up'));
      if (info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${count}`) && inSync) return;
      if (Date.now() > deadline)
        throw new Error(`cluster node ${port} not ok within ${timeoutMs} ms:\n${info}\n${replication}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    redis.disconnect();
  }
}

/** One line of `CLUSTER NODES`: port, flags, the primary's id (replicas), slot ranges (primaries). */
interface ClusterNodeLine {
  id: string;
  port: number;
  primary: boolean;
  primaryId: string;
  slots: Array<[number, number]>;
}

async function clusterNodes(redis: Redis): Promise<ClusterNodeLine[]> {
  const text = (await redis.cluster('NODES')) as string;
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, primaryId, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        primary: flags!.includes('master'),
        primaryId: primaryId!,
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => s.split('-').map(Number))
          .map(([from, to]) => [from!, to ?? from!] as [number, number]),
      };
    });
}

/** The primary owning `key`'s slot and its replica, as the node on `anyPort` sees them. */
async function shardOf(
  anyPort: number,
  key: string,
  needReplica = true,
): Promise<{ primary: ClusterNodeLine; replica: ClusterNodeLine }> {
  const admin = new Redis({ port: anyPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await admin.connect();
    const slot = Number(await admin.cluster('KEYSLOT', key));
    const lines = await clusterNodes(admin);
    const primary = lines.find((n) => n.primary && n.slots.some(([from, to]) => slot >= from && slot <= to));
    const replica = lines.find((n) => !n.primary && n.primaryId === primary?.id);
    if (!primary) throw new Error(`no primary owns slot ${slot}`);
    if (!replica && needReplica)
      throw new Error(`the primary of slot ${slot} has no replica: start the cluster with replicas: 1`);
    return { primary, replica: replica! };
  } finally {
    admin.disconnect();
  }
}

async function failoverShardOf(anyPort: number, key: string): Promise<{ oldPrimary: number; newPrimary: number }> {
  const { primary, replica } = await shardOf(anyPort, key);
  const node = new Redis({ port: replica.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await node.connect();
    // The replica must be in sync first, else CLUSTER FAILOVER waits for an offset it never reaches.
    const deadline = Date.now() + 10_000;
    while (!(await node.info('replication')).includes('master_link_status:up')) {
      if (Date.now() > deadline) throw new Error(`replica ${replica.port} not in sync within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await node.cluster('FAILOVER');
  } finally {
    node.disconnect();
  }
  await untilPrimary(replica.port, 10_000, 'of CLUSTER FAILOVER');
  return { oldPrimary: primary.port, newPrimary: replica.port };
}

/** The port of a cluster node still running. */
function runningPort(byPort: Map<number, ChildProcess>): number {
  const alive = [...byPort].find(([, proc]) => proc.exitCode === null && proc.signalCode === null);
  if (!alive) throw new Error('no cluster node is running');
  return alive[0];
}

/** kill -9 of the primary of `key`'s shard, asked through any node still running. */
async function killPrimaryOf(
  byPort: Map<number, ChildProcess>,
  key: string,
): Promise<{ killed: number; replica: number; killedAt: number }> {
  const { primary, replica } = await shardOf(runningPort(byPort), key);
  const proc = byPort.get(primary.port)!;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const killedAt = Date.now();
  killGroup(proc, 'SIGKILL');
  await exited;
  await untilPrimary(replica.port, 20_000, 'after its primary was killed');
  return { killed: primary.port, replica: replica.port, killedAt };
}

/** Until the node on `port` reports itself a primary (its replica's promotion); `after` says what for errors. */
async function untilPrimary(port: number, timeoutMs: number, after: string): Promise<void> {
  const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  const deadline = Date.now() + timeoutMs;
  try {
    await node.connect();
    while (!(await node.info('replication')).includes('role:master')) {
      if (Date.now() > deadline) throw new Error(`replica ${port} not primary within ${timeoutMs / 1000} s ${after}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    node.disconnect();
  }
}
