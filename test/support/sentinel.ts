import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './ports';
import { killGroup, spawnGroup, stopGroup } from './process-group';

const INSTALL_HINT =
  'redis-server is not installed. The Sentinel tests start a private primary, two replicas and three sentinels ' +
  '(`redis-server --sentinel`) on free ports; install it with `apt-get install -y redis-server` (Debian/Ubuntu), or set REDIS_SERVER_BIN to its path.';

/** The primary's name in the sentinels' config. */
export const SENTINEL_PRIMARY_NAME = 'iii-primary';

/**
 * How long a primary may be silent before a sentinel thinks it down, in ms. Short so a test's
 * failover starts about a second after the kill; the failover itself then takes a second or two.
 */
const DOWN_AFTER_MS = 1000;

/** After this long a failover that did not finish is tried again (by another sentinel), in ms. */
const FAILOVER_TIMEOUT_MS = 5000;

/**
 * A private Redis Sentinel topology on free loopback ports: one primary, two replicas and three
 * sentinels (quorum 2), as Redis and the Bitnami chart run it. Every process is its own process
 * group; `stop` ends them all (SIGTERM, then SIGKILL of the group after a deadline), and they
 * are SIGKILLed if the test process exits without calling it.
 */
export interface TestSentinel {
  /** `host:port` of each sentinel, comma-separated: III_REDIS_SENTINELS. */
  sentinels: string;
  name: string;
  /** The data nodes' ports; [0] was the primary at the start. */
  dataPorts: number[];
  /** The port of the current primary, as the sentinels say. */
  primaryPort(): Promise<number>;
  /** kill -9 of the current primary; resolves with its port once it is gone. */
  killPrimary(): Promise<number>;
  /** SIGSTOP of the current primary (a hung server, its connections open); resolves with the SIGCONT that resumes it. */
  pausePrimary(): Promise<() => void>;
  /** Waits until the sentinels name a primary other than `port` (the failover finished); resolves with the new one's port. */
  waitForNewPrimary(port: number, timeoutMs?: number): Promise<number>;
  /** Starts a killed data node again on its port, empty; the sentinels make it a replica of the current primary. */
  restartDataNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

interface Managed {
  proc: ChildProcess;
  port: number;
}

export async function startSentinel(options: { password?: string } = {}): Promise<TestSentinel> {
  const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
  if (spawnSync(bin, ['--version']).error) throw new Error(INSTALL_HINT);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-sentinel-'));
  const data = new Map<number, Managed>();
  const sentinels: Managed[] = [];
  const auth =
    options.password === undefined ? [] : ['--requirepass', options.password, '--masterauth', options.password];

  const launch = async (args: string[], port: number, what: string): Promise<ChildProcess> => {
    const proc = spawnGroup(bin, args);
    await waitForPort(port, proc, 10_000, what);
    return proc;
  };
  const startData = async (port: number, primary?: number): Promise<void> => {
    const nodeDir = path.join(dir, `data-${port}`);
    fs.mkdirSync(nodeDir, { recursive: true });
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      nodeDir,
      ...auth,
    ];
    if (primary !== undefined) args.push('--replicaof', '127.0.0.1', String(primary));
    data.set(port, { proc: await launch(args, port, `redis-server (data ${port})`), port });
  };

  const stop = async () => {
    await Promise.all([...sentinels, ...data.values()].map((m) => stopGroup(m.proc)));
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    const dataPorts = [await freePort(), await freePort(), await freePort()];
    await startData(dataPorts[0]!);
    await Promise.all(dataPorts.slice(1).map((port) => startData(port, dataPorts[0])));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // A sentinel rewrites its config file (what it learned), so each has its own.
      const file = path.join(dir, `sentinel-${port}.conf`);
      fs.writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_PRIMARY_NAME} 127.0.0.1 ${dataPorts[0]} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_PRIMARY_NAME} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${SENTINEL_PRIMARY_NAME} ${FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${SENTINEL_PRIMARY_NAME} 2`,
          ...(options.password === undefined
            ? []
            : [`sentinel auth-pass ${SENTINEL_PRIMARY_NAME} ${options.password}`]),
          '',
        ].join('\n'),
      );
      sentinels.push({ proc: await launch([file, '--sentinel'], port, `redis-server --sentinel (${port})`), port });
    }
    await waitForTopology(
      sentinels.map((s) => s.port),
      2,
      2,
      20_000,
    );
    await waitForReplicas(dataPorts[0]!, 2, options.password, 20_000);

    const primaryPort = () => askPrimary(sentinels.map((s) => s.port));
    const ours = (port: number): Managed => {
      const node = data.get(port);
      if (!node) throw new Error(`the sentinels name 127.0.0.1:${port} as primary, which is not one of ours`);
      return node;
    };
    return {
      sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      name: SENTINEL_PRIMARY_NAME,
      dataPorts,
      primaryPort,
      async pausePrimary() {
        const node = ours(await primaryPort());
        killGroup(node.proc, 'SIGSTOP');
        return () => killGroup(node.proc, 'SIGCONT');
      },
      async killPrimary() {
        const port = await primaryPort();
        const node = ours(port);
        const exited = new Promise((resolve) => node.proc.once('exit', resolve));
        killGroup(node.proc, 'SIGKILL');
        await exited;
        return port;
      },
      async waitForNewPrimary(old, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const port = await primaryPort().catch(() => old);
          if (port !== old) return port;
          if (Date.now() > deadline)
            throw new Error(
              `the sentinels did not promote a new primary within ${timeoutMs / 1000} s of losing 127.0.0.1:${old}`,
            );
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      },
      async restartDataNode(port) {
        await startData(port);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The primary's port as the first sentinel that answers names it. */
async function askPrimary(ports: number[]): Promise<number> {
  let last: unknown;
  for (const port of ports) {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const reply = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_PRIMARY_NAME)) as
        [string, string] | null;
      if (reply) return Number(reply[1]);
    } catch (err) {
      last = err;
    } finally {
      client.disconnect();
    }
  }
  throw new Error(`no sentinel named a primary: ${(last as Error | undefined)?.message ?? 'none answered'}`);
}

/** Until every sentinel sees the primary, `replicas` replicas and `others` other sentinels. */
async function waitForTopology(ports: number[], replicas: number, others: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = '';
  for (;;) {
    let ready = true;
    for (const port of ports) {
      const client = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const flat = (await client.call('SENTINEL', 'master', SENTINEL_PRIMARY_NAME)) as string[];
        const info = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i]!, flat[i + 1]!);
        seen = `sentinel ${port}: ${info.get('num-slaves')} replicas, ${info.get('num-other-sentinels')} other sentinels, flags ${info.get('flags')}`;
        if (
          Number(info.get('num-slaves')) < replicas ||
          Number(info.get('num-other-sentinels')) < others ||
          info.get('flags') !== 'master'
        )
          ready = false;
      } catch (err) {
        seen = `sentinel ${port}: ${(err as Error).message}`;
        ready = false;
      } finally {
        client.disconnect();
      }
      if (!ready) break;
    }
    if (ready) return;
    if (Date.now() > deadline)
      throw new Error(`the Sentinel topology did not form within ${timeoutMs / 1000} s (${seen})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Until the primary on `port` has `count` replicas online that confirm its writes (WAIT). */
async function waitForReplicas(
  port: number,
  count: number,
  password: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    ...(password === undefined ? {} : { password }),
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => undefined);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      await client.set('iii-test:replication-probe', String(Date.now()));
      if (Number(await client.call('WAIT', count, 500)) >= count) return;
      if (Date.now() > deadline)
        throw new Error(
          `the replicas of 127.0.0.1:${port} did not sync within ${timeoutMs / 1000} s: ${await client.info('replication')}`,
        );
    }
  } finally {
    client.disconnect();
  }
}
