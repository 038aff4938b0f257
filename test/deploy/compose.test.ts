import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { createConnection, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { registerWorker } from 'iii-sdk';
import { Redis } from 'ioredis';
import yaml from 'js-yaml';
import { io } from 'socket.io-client';
import { loadConfig } from '../../src/config/load';
import { freePort, startNodeProcess, type NodeProcess } from '../support/node-process';
import { waitForPort } from '../support/ports';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * docker-compose.yml and its balancer config (deploy/haproxy.cfg), checked without a Docker
 * engine: the real `docker compose config` (or docker-compose v1) normalizes the file and the
 * assertions read its output; the real `haproxy -c` checks the balancer config as shipped; and
 * the same config, with the node names pointed at three real engine processes on loopback, runs
 * in a real haproxy in front of them with the example worker connected through it.
 */

const ROOT = path.resolve(__dirname, '../..');
const HAPROXY_CFG = path.join(ROOT, 'deploy/haproxy.cfg');
/** The balancer of docker-compose.tls.yml: TCP pass-through. */
const HAPROXY_TLS_CFG = path.join(ROOT, 'deploy/haproxy-tls.cfg');
const ENGINE_SERVICES = ['engine-1', 'engine-2', 'engine-3'];
/** docker-compose.sentinel.yml: the data nodes besides the primary `redis`, the sentinels, and the primary's name. */
const REPLICA_SERVICES = ['redis-replica-1', 'redis-replica-2'];
const SENTINEL_SERVICES = ['sentinel-1', 'sentinel-2', 'sentinel-3'];
const SENTINEL_PRIMARY = 'mymaster';
/** What every sentinel of docker-compose.sentinel.yml starts from. */
const SENTINEL_CONF = path.join(ROOT, 'deploy/redis-sentinel.conf');
/** The engine's default drain grace (III_DRAIN_GRACE_MS); compose must wait longer than that. */
const DRAIN_GRACE_MS = 25_000;
/** Worker WebSocket, HTTP triggers, stream clients: the ports the balancer publishes. */
const PUBLIC_PORTS = [49134, 3111, 3112];
const COMPOSE_HINT =
  'docker compose is not installed: `apt-get install -y --no-install-recommends docker-compose` (Debian; v1 is enough, ' +
  'no Docker engine needed for `config`), or install the Docker compose v2 plugin.';
const HAPROXY_HINT =
  'haproxy is not installed: `apt-get install -y --no-install-recommends haproxy` (Debian), or set HAPROXY_BIN.';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string | number | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: Array<string | { published: string | number; target: string | number; host_ip?: string }>;
  volumes?: Array<string | { type?: string; source: string; target: string; read_only?: boolean }>;
  stop_grace_period?: string;
  stop_signal?: string;
}

/** `docker compose` when the v2 plugin is there, else docker-compose v1. */
function composeCommand(): string[] {
  if (spawnSync('docker', ['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version']).status === 0) return ['docker-compose'];
  throw new Error(COMPOSE_HINT);
}

function haproxyBin(): string {
  const bin = process.env['HAPROXY_BIN'] ?? 'haproxy';
  if (spawnSync(bin, ['-v']).error) throw new Error(HAPROXY_HINT);
  return bin;
}

/** What the user exports before `docker compose up` (the file has no default on purpose). */
const WORKER_TOKEN = 'compose-test-token-7f3a9c';

/**
 * `docker compose -f <file>... config` with `extraEnv` (III_WORKER_TOKEN removed when it maps to
 * undefined); `files` in the repository root, docker-compose.yml alone by default.
 */
function runComposeConfig(
  extraEnv: NodeJS.ProcessEnv,
  files: string[] = ['docker-compose.yml'],
): { status: number | null; stdout: string; stderr: string } {
  const [cmd, ...args] = composeCommand();
  const env = { ...process.env, ...extraEnv };
  for (const key of Object.keys(env)) if (key.startsWith('COMPOSE_') || env[key] === undefined) delete env[key];
  const run = spawnSync(cmd, [...args, ...files.flatMap((f) => ['-f', path.join(ROOT, f)]), 'config'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function composeConfig(files?: string[]): Record<string, ComposeService> {
  const run = runComposeConfig({ III_WORKER_TOKEN: WORKER_TOKEN }, files);
  if (run.status !== 0) throw new Error(`docker compose config failed (${run.status}): ${run.stderr}`);
  return (yaml.load(run.stdout) as { services: Record<string, ComposeService> }).services;
}

/** "30s", "1m30s", "1.5s" in milliseconds. */
function durationMs(value: string | undefined): number {
  let total = 0;
  for (const [, n, unit] of (value ?? '').matchAll(/([\d.]+)(ms|h|m|s)/g))
    total += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms'];
  return total;
}

interface PortMapping {
  hostIp: string | undefined;
  published: number;
  target: number;
}

/** The ports, whatever form they were normalized to: v1 `127.0.0.1:3111:3111/tcp`, v2 `{host_ip, published, target}`. */
function ports(service: ComposeService): PortMapping[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip, published: Number(p.published), target: Number(p.target) };
    const parts = p.replace(/\/\w+$/, '').split(':');
    const [target, published] = [Number(parts.pop()), Number(parts.pop())];
    return { hostIp: parts.length > 0 ? parts.join(':') : undefined, published, target };
  });
}

/** Published -> target port pairs. */
function portPairs(service: ComposeService): Array<[number, number]> {
  return ports(service).map((p) => [p.published, p.target]);
}

/** Backends of an haproxy config: name -> server lines as [name, host:port]. */
function haproxyBackends(text: string): Map<string, Array<[string, string]>> {
  const backends = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const section = /^(global|defaults|resolvers|frontend|backend|listen)\b\s*(\S*)/.exec(line);
    if (section) {
      current = section[1] === 'backend' ? [] : undefined;
      if (current) backends.set(section[2], current);
    } else if (current && line.startsWith('server ')) {
      const [, name, address] = line.split(/\s+/);
      current.push([name, address]);
    }
  }
  return backends;
}

/** Sections of an haproxy config ("defaults", "frontend workers", ...) -> their lines, comments removed. */
function haproxySections(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (/^(global|defaults|resolvers|frontend|backend|listen)\b/.test(line))
      sections.set(line.replace(/\s+/g, ' '), (current = []));
    else current.push(line);
  }
  return sections;
}

/** Ports the frontends bind (`bind :49134`). */
function haproxyBinds(text: string): number[] {
  return [...text.matchAll(/^\s*bind\s+\S*:(\d+)/gm)].map((m) => Number(m[1]));
}

describe('docker-compose.yml, as normalized by docker compose config', () => {
  let services: Record<string, ComposeService>;
  beforeAll(() => {
    services = composeConfig();
  });

  test('has redis, three engine nodes, the balancer and the example worker, nothing else', () => {
    expect(Object.keys(services).sort()).toEqual(['engine-1', 'engine-2', 'engine-3', 'lb', 'redis', 'worker']);
  });

  test('every engine node is built from deploy/Dockerfile and runs the cluster config', () => {
    for (const name of ENGINE_SERVICES) {
      const engine = services[name];
      expect(engine.build).toMatchObject({ context: ROOT, dockerfile: 'deploy/Dockerfile' });
      expect(engine.command).toEqual(['--config', 'config/cluster.yaml']);
    }
  });

  test('the engine nodes share one Redis URL and have distinct node ids, each advertising its service name', () => {
    const ids = ENGINE_SERVICES.map((name) => {
      const env = services[name].environment!;
      expect(env['III_REDIS_URL']).toBe('redis://redis:6379');
      expect(env['III_ADVERTISE_HOST']).toBe(name);
      return env['III_NODE_ID'];
    });
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => typeof id === 'string' && id !== '')).toBe(true);
  });

  test('engine nodes wait for a healthy Redis, probe /healthz, and get longer than the drain grace to stop', () => {
    for (const name of ENGINE_SERVICES) {
      const engine = services[name];
      expect(engine.depends_on?.['redis']?.condition).toBe('service_healthy');
      expect(engine.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:9464/healthz');
      expect(engine.stop_signal).toBe('SIGTERM');
      expect(durationMs(engine.stop_grace_period)).toBeGreaterThan(DRAIN_GRACE_MS);
      expect(Number(engine.environment!['III_DRAIN_GRACE_MS'])).toBe(DRAIN_GRACE_MS);
    }
  });

  test('redis is the official image with a redis-cli ping healthcheck', () => {
    expect(services['redis'].image).toMatch(/^redis:7/);
    expect(services['redis'].healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  test('only the balancer publishes ports: workers, HTTP triggers, streams (and its stats)', () => {
    for (const [name, service] of Object.entries(services))
      if (name !== 'lb') expect([name, service.ports ?? []]).toEqual([name, []]);
    const lb = services['lb'];
    for (const port of PUBLIC_PORTS) expect(portPairs(lb)).toContainEqual([port, port]);
    // Loopback only: HTTP triggers and streams have no authentication of their own.
    expect(ports(lb).map((p) => p.hostIp)).toEqual(ports(lb).map(() => '127.0.0.1'));
    expect(lb.healthcheck?.test.join(' ')).toContain('/healthz');
    for (const name of ENGINE_SERVICES) expect(lb.depends_on?.[name]).toBeDefined();
  });

  test('the balancer runs deploy/haproxy.cfg, and its frontends and backends match the services', () => {
    const lb = services['lb'];
    const mounts = (lb.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    expect(mounts.some((m) => m.startsWith(`${HAPROXY_CFG}:/usr/local/etc/haproxy/haproxy.cfg`))).toBe(true);
    const text = fs.readFileSync(HAPROXY_CFG, 'utf8');
    expect(haproxyBinds(text).sort()).toEqual(
      portPairs(lb)
        .map(([, target]) => target)
        .sort(),
    );
    const backends = haproxyBackends(text);
    for (const port of PUBLIC_PORTS) {
      const backend = [...backends.values()].find((servers) =>
        servers.some(([, address]) => address.endsWith(`:${port}`)),
      );
      expect(backend).toEqual(ENGINE_SERVICES.map((name) => [name, `${name}:${port}`]));
    }
  });

  test('the engine nodes and the example worker get the worker token from the environment', () => {
    for (const name of [...ENGINE_SERVICES, 'worker'])
      expect([name, services[name].environment?.['III_WORKER_TOKEN']]).toEqual([name, WORKER_TOKEN]);
  });

  test('without III_WORKER_TOKEN (unset or empty) docker compose refuses the file and says what to set', () => {
    for (const token of [undefined, '']) {
      const run = runComposeConfig({ III_WORKER_TOKEN: token });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('set III_WORKER_TOKEN');
    }
  });

  test('the engines run config/cluster.yaml with no per-address cap on the public listeners (they only see the balancer)', () => {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, 'config/cluster.yaml'), 'utf8')) as {
      workers: Array<{ name: string; config?: Record<string, unknown> }>;
    };
    const caps = Object.fromEntries(
      doc.workers
        .filter((w) => w.config?.['port'] !== undefined)
        .map((w) => [w.name, w.config!['max_connections_per_address']]),
    );
    expect(caps).toEqual({ 'iii-worker-manager': 0, http: 0, 'iii-stream': 0 });
  });

  test('the example worker connects through the balancer', () => {
    const worker = services['worker'];
    expect(worker.environment?.['III_URL']).toBe('ws://lb:49134');
    expect(worker.depends_on?.['lb']).toBeDefined();
    expect(worker.build?.context).toBe(path.join(ROOT, 'examples/compose-worker'));
  });
});

describe('deploy/haproxy.cfg', () => {
  test('haproxy -c accepts it as shipped; the only warnings are the node names that resolve only inside compose', () => {
    const run = spawnSync(haproxyBin(), ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8' });
    expect([run.status, run.stdout + run.stderr]).toEqual([0, expect.stringContaining('Configuration file is valid')]);
    const warnings = (run.stdout + run.stderr).split('\n').filter((l) => l.includes('[WARNING]'));
    expect(warnings.filter((l) => !/could not resolve address 'engine-[123]'/.test(l))).toEqual([]);
  });
});

describe('the balancer config in front of three real engine nodes', () => {
  let redis: TestRedis;
  let nodes: NodeProcess[] = [];
  let lb: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  let lbOutput = '';
  const lbPorts = { ws: 0, http: 0, stream: 0, stats: 0 };

  beforeAll(async () => {
    const bin = haproxyBin();
    redis = await startRedis();
    const keyPrefix = `compose-${process.pid}:`;
    const env = { III_WORKER_TOKEN: WORKER_TOKEN };
    nodes = await Promise.all(
      ENGINE_SERVICES.map((nodeId) => startNodeProcess({ nodeId, redisUrl: redis.url, keyPrefix, env })),
    );
    [lbPorts.ws, lbPorts.http, lbPorts.stream, lbPorts.stats] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);

    lb = await startBalancer(
      bin,
      localHaproxyConfig(HAPROXY_CFG, nodes, lbPorts),
      lbPorts.stats,
      (text) => (lbOutput += text),
    );

    worker = spawn(process.execPath, [path.join(ROOT, 'examples/compose-worker/worker.js')], {
      cwd: ROOT,
      env: { ...process.env, III_URL: `ws://127.0.0.1:${lbPorts.ws}`, III_WORKER_TOKEN: WORKER_TOKEN },
      stdio: 'ignore',
    });
  }, 30_000);

  afterAll(async () => {
    for (const child of [worker, lb]) await stopChild(child);
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
    await redis?.stop();
  });

  test('the example worker answers through the balancer, and again after its node is stopped', async () => {
    const hello = async (): Promise<{ status: number; body: { message?: string; greeted?: number } }> => {
      const res = await fetch(`http://127.0.0.1:${lbPorts.http}/hello/Ada`);
      return { status: res.status, body: (await res.json()) as { message?: string; greeted?: number } };
    };
    await waitFor(
      async () => (await hello()).status === 200,
      15_000,
      () => lbOutput,
    );
    const first = await hello();
    expect(first.body.message).toBe('Hello, Ada!');

    // The node holding the worker drains: the worker reconnects through the balancer to
    // another node, the balancer stops sending HTTP to the stopped one, and the count (Redis) goes on.
    const counts = await Promise.all(nodes.map((node) => connectedWorkers(node.metricsPort)));
    const holder = counts.indexOf(1);
    expect(counts.filter((c) => c === 1)).toHaveLength(1);
    await nodes[holder].kill('SIGTERM');
    // The balancer's /readyz probe takes the stopped node out of every backend.
    await waitFor(
      async () => (await serverStatuses(lbPorts.stats, ENGINE_SERVICES[holder])).every((s) => s.startsWith('DOWN')),
      5_000,
      () => lbOutput,
    );
    expect(await serverStatuses(lbPorts.stats, ENGINE_SERVICES[(holder + 1) % 3])).toEqual(['UP', 'UP', 'UP']);
    const survivors = nodes.filter((_, i) => i !== holder);
    await waitFor(
      async () => (await Promise.all(survivors.map((n) => connectedWorkers(n.metricsPort)))).includes(1),
      15_000,
      () => lbOutput,
    );
    await waitFor(
      async () => (await hello()).status === 200,
      10_000,
      () => lbOutput,
    );
    const before = (await hello()).body.greeted!;
    for (let i = 0; i < 10; i++)
      expect(await hello()).toEqual({ status: 200, body: expect.objectContaining({ greeted: before + i + 1 }) });
    expect(before).toBeGreaterThan(first.body.greeted!);
  }, 60_000);

  test('the balancer caps connections per client address at 1024 over its public ports, and frees a slot when one closes', async () => {
    const CAP = 1024;
    const EXTRA = 8;
    const attempts: Attempt[] = [];
    try {
      // Spread over the three frontends (the count is per source address, whatever the port), in
      // batches, well within the balancer's 10 s `timeout http-request` for idle connections.
      const ports = [lbPorts.ws, lbPorts.http, lbPorts.stream];
      for (let i = 0; i < CAP + EXTRA; i += 128) {
        attempts.push(...Array.from({ length: Math.min(128, CAP + EXTRA - i) }, (_, j) => attempt(ports[(i + j) % 3])));
        await Promise.all(attempts.slice(i).map((a) => a.settled));
      }
      await new Promise((r) => setTimeout(r, 500));
      // The example worker already holds a connection from this address, so a few fewer than
      // CAP of ours fit; every attempt beyond the cap is refused (reset or closed at once).
      const open = attempts.filter((a) => a.open()).length;
      expect(open).toBeLessThan(CAP);
      expect(open).toBeGreaterThanOrEqual(CAP - EXTRA);
      expect(attempts.length - open).toBeGreaterThanOrEqual(EXTRA);

      attempts.find((a) => a.open())!.socket.destroy();
      await waitFor(
        async () => {
          const again = attempt(lbPorts.http);
          attempts.push(again);
          await again.settled;
          await new Promise((r) => setTimeout(r, 300));
          return again.open();
        },
        10_000,
        () => lbOutput,
      );
    } finally {
      for (const a of attempts) a.socket.destroy();
    }
  }, 60_000);

  test('a Socket.IO client on long-polling keeps its node through the stream port and gets a change made through the balancer', async () => {
    // Each polling request is a separate HTTP request: without `balance source` most would
    // reach a node that does not know the session ("Session ID unknown").
    const socket = io(`http://127.0.0.1:${lbPorts.stream}`, {
      transports: ['polling'],
      reconnection: false,
      forceNew: true,
    });
    const writer = registerWorker(`ws://127.0.0.1:${lbPorts.ws}`, {
      workerName: 'compose-writer',
      headers: { Authorization: `Bearer ${WORKER_TOKEN}` },
      enableMetricsReporting: false,
      otel: { enabled: false },
    });
    try {
      const events: unknown[] = [];
      socket.on('stream', (event: unknown) => events.push(event));
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      expect(
        await socket.emitWithAck('join', { subscriptionId: 'sub', streamName: 'lobby', groupId: 'compose' }),
      ).toEqual({ ok: true });
      for (let i = 0; i < 5; i++) {
        await writer.trigger({
          function_id: 'stream::set',
          payload: { stream_name: 'lobby', group_id: 'compose', item_id: `m${i}`, data: { i } },
        });
      }
      await waitFor(
        async () =>
          events.filter((e) => JSON.stringify(e).includes('"item_id":"m') || JSON.stringify(e).includes('"id":"m'))
            .length >= 5,
        10_000,
        () => JSON.stringify(events),
      );
      expect(socket.io.engine.transport.name).toBe('polling');
      expect(socket.connected).toBe(true);
    } finally {
      socket.disconnect();
      await writer.shutdown();
    }
  }, 30_000);
});

describe('docker-compose.tls.yml over docker-compose.yml, as normalized by docker compose config', () => {
  let plain: Record<string, ComposeService>;
  let services: Record<string, ComposeService>;
  beforeAll(() => {
    plain = composeConfig();
    services = composeConfig(['docker-compose.yml', 'docker-compose.tls.yml']);
  });
  const mounts = (service: ComposeService) =>
    (service.volumes ?? []).map((v) =>
      typeof v === 'string'
        ? { source: v.split(':')[0], target: v.split(':')[1], readOnly: v.endsWith(':ro') }
        : { source: v.source, target: v.target, readOnly: v.read_only === true },
    );

  test('the same services, ports and node names: the override adds TLS and changes nothing else', () => {
    expect(Object.keys(services).sort()).toEqual(Object.keys(plain).sort());
    const sorted = (service: ComposeService) => ports(service).sort((a, b) => a.published - b.published);
    for (const name of Object.keys(plain)) expect([name, sorted(services[name])]).toEqual([name, sorted(plain[name])]);
    for (const name of ENGINE_SERVICES) {
      const { III_TLS_CERT_FILE, III_TLS_KEY_FILE, III_TLS_CA_FILE, ...rest } = services[name].environment!;
      expect([III_TLS_CERT_FILE, III_TLS_KEY_FILE, III_TLS_CA_FILE]).toEqual([
        '/etc/iii-tls/tls.crt',
        '/etc/iii-tls/tls.key',
        '/etc/iii-tls/ca.crt',
      ]);
      expect(rest).toEqual(plain[name].environment);
      expect(services[name].command).toEqual(plain[name].command);
    }
  });

  test('every engine node mounts ./certs/tls.crt, tls.key and ca.crt read-only where III_TLS_* point', () => {
    for (const name of ENGINE_SERVICES) {
      expect(mounts(services[name]).sort((a, b) => a.target.localeCompare(b.target))).toEqual(
        ['ca.crt', 'tls.crt', 'tls.key'].map((file) => ({
          source: path.join(ROOT, 'certs', file),
          target: `/etc/iii-tls/${file}`,
          readOnly: true,
        })),
      );
    }
  });

  test('the balancer runs deploy/haproxy-tls.cfg instead of deploy/haproxy.cfg', () => {
    expect(mounts(services['lb'])).toEqual([
      { source: HAPROXY_TLS_CFG, target: '/usr/local/etc/haproxy/haproxy.cfg', readOnly: true },
    ]);
  });

  test('the example worker dials wss://lb:49134 and trusts ./certs/ca.crt (NODE_EXTRA_CA_CERTS), and gets no key', () => {
    const worker = services['worker'];
    expect(worker.environment).toMatchObject({
      III_URL: 'wss://lb:49134',
      NODE_EXTRA_CA_CERTS: '/etc/iii-tls/ca.crt',
      III_WORKER_TOKEN: WORKER_TOKEN,
    });
    expect(mounts(worker)).toEqual([
      { source: path.join(ROOT, 'certs/ca.crt'), target: '/etc/iii-tls/ca.crt', readOnly: true },
    ]);
  });

  test('still refuses to run without III_WORKER_TOKEN', () => {
    const run = runComposeConfig({ III_WORKER_TOKEN: undefined }, ['docker-compose.yml', 'docker-compose.tls.yml']);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('set III_WORKER_TOKEN');
  });
});

describe('deploy/haproxy-tls.cfg (TLS pass-through)', () => {
  const text = () => fs.readFileSync(HAPROXY_TLS_CFG, 'utf8');

  test('haproxy -c accepts it as shipped; the only warnings are the node names that resolve only inside compose', () => {
    const run = spawnSync(haproxyBin(), ['-c', '-f', HAPROXY_TLS_CFG], { encoding: 'utf8' });
    expect([run.status, run.stdout + run.stderr]).toEqual([0, expect.stringContaining('Configuration file is valid')]);
    const warnings = (run.stdout + run.stderr).split('\n').filter((l) => l.includes('[WARNING]'));
    expect(warnings.filter((l) => !/could not resolve address 'engine-[123]'/.test(l))).toEqual([]);
  });

  test('the same frontends, backends and servers as deploy/haproxy.cfg, in TCP mode (only the stats page speaks HTTP)', () => {
    const plainText = fs.readFileSync(HAPROXY_CFG, 'utf8');
    expect(haproxyBinds(text())).toEqual(haproxyBinds(plainText));
    expect([...haproxyBackends(text())]).toEqual([...haproxyBackends(plainText)]);
    const sections = haproxySections(text());
    expect(sections.get('defaults')).toContain('mode tcp');
    // HTTP mode or HTTP-only options would make haproxy read the encrypted bytes as HTTP.
    for (const [name, lines] of sections) {
      const httpLines = lines.filter((l) => /^(mode http|option (forwardfor|httplog)|timeout http-request)\b/.test(l));
      expect([name, httpLines]).toEqual([name, name === 'frontend stats' ? ['mode http', 'option httplog'] : []]);
    }
  });
});

describe('docker-compose.sentinel.yml over docker-compose.yml, as normalized by docker compose config', () => {
  let plain: Record<string, ComposeService>;
  let services: Record<string, ComposeService>;
  beforeAll(() => {
    plain = composeConfig();
    services = composeConfig(['docker-compose.yml', 'docker-compose.sentinel.yml']);
  });

  test('adds two replicas and three sentinels to the same services', () => {
    expect(Object.keys(services).sort()).toEqual(
      [...Object.keys(plain), ...REPLICA_SERVICES, ...SENTINEL_SERVICES].sort(),
    );
  });

  test('the engines find the primary through the three sentinels (III_REDIS_SENTINELS, III_REDIS_SENTINEL_NAME), with no Redis URL, and wait for healthy sentinels', () => {
    for (const name of ENGINE_SERVICES) {
      const { III_REDIS_URL, III_REDIS_SENTINELS, III_REDIS_SENTINEL_NAME, ...rest } = services[name].environment!;
      expect([name, III_REDIS_URL, III_REDIS_SENTINELS, III_REDIS_SENTINEL_NAME]).toEqual([
        name,
        '',
        SENTINEL_SERVICES.map((s) => `${s}:26379`).join(','),
        SENTINEL_PRIMARY,
      ]);
      // Everything else as in docker-compose.yml.
      const { III_REDIS_URL: plainUrl, ...plainRest } = plain[name].environment!;
      expect(plainUrl).toBe('redis://redis:6379');
      expect(rest).toEqual(plainRest);
      expect(services[name].command).toEqual(plain[name].command);
      for (const sentinel of SENTINEL_SERVICES)
        expect([name, sentinel, services[name].depends_on?.[sentinel]?.condition]).toEqual([
          name,
          sentinel,
          'service_healthy',
        ]);
    }
  });

  test("the engine's config loader, given an engine's environment and config/cluster.yaml, runs in Sentinel mode", () => {
    const env = Object.fromEntries(
      Object.entries(services['engine-1'].environment!).map(([key, value]) => [key, String(value ?? '')]),
    );
    const { config } = loadConfig({ path: path.join(ROOT, 'config/cluster.yaml'), env });
    expect(config.cluster.redisUrl).toBeUndefined();
    expect(config.cluster.redisSentinels).toEqual(SENTINEL_SERVICES.map((host) => ({ host, port: 26379 })));
    expect(config.cluster.redisSentinelName).toBe(SENTINEL_PRIMARY);
  });

  test('the replicas replicate the primary `redis`, from the same image, and every data node announces its service name', () => {
    expect(services['redis'].command).toEqual([
      'redis-server',
      '--appendonly',
      'yes',
      '--replica-announce-ip',
      'redis',
    ]);
    for (const name of REPLICA_SERVICES) {
      const replica = services[name];
      expect(replica.image).toBe(services['redis'].image);
      expect(replica.command).toEqual([
        'redis-server',
        '--appendonly',
        'yes',
        '--replicaof',
        'redis',
        '6379',
        '--replica-announce-ip',
        name,
      ]);
      expect(replica.depends_on?.['redis']?.condition).toBe('service_healthy');
      expect(replica.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    }
  });

  test('every sentinel mounts deploy/redis-sentinel.conf read-only, runs a writable copy of it with --sentinel, and is health-checked on 26379', () => {
    for (const name of SENTINEL_SERVICES) {
      const sentinel = services[name];
      expect(sentinel.image).toBe(services['redis'].image);
      expect(sentinel.volumes).toEqual([`${SENTINEL_CONF}:/etc/redis-sentinel/sentinel.conf:ro`]);
      const [shell, flag, script] = sentinel.command!;
      expect([shell, flag]).toEqual(['sh', '-c']);
      // The copy is made once: a restarted sentinel keeps what it rewrote (the primary after a failover).
      expect(script).toContain(
        'test -f /data/sentinel.conf || cp /etc/redis-sentinel/sentinel.conf /data/sentinel.conf;',
      );
      expect(script).toMatch(/exec docker-entrypoint\.sh redis-server \/data\/sentinel\.conf --sentinel$/);
      expect(sentinel.healthcheck?.test).toEqual(['CMD', 'redis-cli', '-p', '26379', 'ping']);
      expect(sentinel.depends_on?.['redis']?.condition).toBe('service_healthy');
    }
  });

  test('still refuses to run without III_WORKER_TOKEN', () => {
    const run = runComposeConfig({ III_WORKER_TOKEN: undefined }, [
      'docker-compose.yml',
      'docker-compose.sentinel.yml',
    ]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('set III_WORKER_TOKEN');
  });
});

describe('deploy/redis-sentinel.conf', () => {
  /** The directives, comments and blank lines removed, each split into words. */
  const directives = () =>
    fs
      .readFileSync(SENTINEL_CONF, 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter((line) => line !== '')
      .map((line) => line.split(/\s+/));

  test('monitors the compose service `redis` under the name the engines ask for, quorum 2 of 3, by host name, on port 26379', () => {
    expect(directives()).toEqual([
      ['port', '26379'],
      ['protected-mode', 'no'],
      ['dir', '/data'],
      ['sentinel', 'resolve-hostnames', 'yes'],
      ['sentinel', 'announce-hostnames', 'yes'],
      ['sentinel', 'monitor', SENTINEL_PRIMARY, 'redis', '6379', '2'],
      ['sentinel', 'down-after-milliseconds', SENTINEL_PRIMARY, '5000'],
      ['sentinel', 'failover-timeout', SENTINEL_PRIMARY, '30000'],
      ['sentinel', 'parallel-syncs', SENTINEL_PRIMARY, '1'],
    ]);
  });

  describe('run by a real redis-server --sentinel, adapted to loopback (the primary redis -> 127.0.0.1, free ports)', () => {
    let primary: TestRedis;
    let replica: TestRedis;
    let sentinel: ChildProcess | undefined;
    let sentinelPort: number;
    let dir: string;
    let copy: string;
    let node: NodeProcess | undefined;
    const client = () =>
      new Redis({ host: '127.0.0.1', port: sentinelPort, lazyConnect: true, maxRetriesPerRequest: 1 });

    beforeAll(async () => {
      primary = await startRedis();
      replica = await startRedis();
      const toReplica = new Redis({ host: '127.0.0.1', port: replica.port });
      await toReplica.call('REPLICAOF', '127.0.0.1', String(primary.port));
      await toReplica.quit();
      const toPrimary = new Redis({ host: '127.0.0.1', port: primary.port });
      const deadline = Date.now() + 10_000;
      while (!/connected_slaves:1/.test(await toPrimary.info('replication'))) {
        if (Date.now() > deadline) throw new Error('the replica did not attach to the primary within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await toPrimary.quit();

      sentinelPort = await freePort();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-compose-sentinel-'));
      copy = path.join(dir, 'sentinel.conf');
      // Only addresses change: the port, loopback, the data dir, and `redis 6379` -> the primary here.
      const shipped = fs.readFileSync(SENTINEL_CONF, 'utf8');
      const adapted = shipped
        .replace(/^port 26379$/m, `port ${sentinelPort}\nbind 127.0.0.1`)
        .replace(/^dir \/data$/m, `dir ${dir}`)
        .replace(/^(sentinel monitor \S+) redis 6379 /m, `$1 127.0.0.1 ${primary.port} `);
      expect(adapted).toContain(`sentinel monitor ${SENTINEL_PRIMARY} 127.0.0.1 ${primary.port} 2\n`);
      fs.writeFileSync(copy, adapted);
      const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
      sentinel = spawn(bin, [copy, '--sentinel'], { stdio: 'ignore' });
      await waitForPort(sentinelPort, sentinel, 10_000, 'redis-server --sentinel');
    }, 30_000);

    afterAll(async () => {
      await node?.kill('SIGKILL');
      await stopChild(sentinel);
      await replica?.stop();
      await primary?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test('names the primary and its replica, with the timings and quorum of the file', async () => {
      const redis = client();
      try {
        await redis.connect();
        expect(await redis.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_PRIMARY)).toEqual([
          '127.0.0.1',
          String(primary.port),
        ]);
        const masterInfo = async (): Promise<Record<string, string>> => {
          const pairs = (await redis.call('SENTINEL', 'master', SENTINEL_PRIMARY)) as string[];
          return Object.fromEntries(pairs.flatMap((v, i) => (i % 2 === 0 ? [[v, pairs[i + 1]]] : [])));
        };
        // The sentinel learns the replica from the primary's INFO, after it has connected to it.
        let master = await masterInfo();
        for (const deadline = Date.now() + 15_000; master['num-slaves'] !== '1' && Date.now() < deadline;) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          master = await masterInfo();
        }
        expect(master).toMatchObject({
          flags: 'master',
          quorum: '2',
          'down-after-milliseconds': '5000',
          'failover-timeout': '30000',
          'parallel-syncs': '1',
        });
        expect(master['num-slaves']).toBe('1');
        const replicas = (await redis.call('SENTINEL', 'replicas', SENTINEL_PRIMARY)) as string[][];
        expect(replicas.map((r) => r[r.indexOf('port') + 1])).toEqual([String(replica.port)]);
        expect(await redis.call('SENTINEL', 'CONFIG', 'GET', 'resolve-hostnames')).toEqual([
          'resolve-hostnames',
          'yes',
        ]);
        expect(await redis.call('SENTINEL', 'CONFIG', 'GET', 'announce-hostnames')).toEqual([
          'announce-hostnames',
          'yes',
        ]);
      } finally {
        redis.disconnect();
      }
    });

    test('rewrites its file at start (its id, what it found): why the services run a writable copy', () => {
      expect(fs.readFileSync(copy, 'utf8')).toMatch(/^sentinel myid [0-9a-f]{40}$/m);
    });

    test('an engine with a compose engine environment (sentinel address adapted) and config/cluster.yaml keeps its cluster data on the primary it names', async () => {
      const composeEnv = composeConfig(['docker-compose.yml', 'docker-compose.sentinel.yml'])['engine-1'].environment!;
      const keyPrefix = `compose-sentinel-${process.pid}:`;
      node = await startNodeProcess({
        nodeId: 'engine-1',
        args: ['--config', path.join(ROOT, 'config/cluster.yaml')],
        env: {
          III_WORKER_TOKEN: WORKER_TOKEN,
          III_REDIS_URL: String(composeEnv['III_REDIS_URL']),
          III_REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
          III_REDIS_SENTINEL_NAME: String(composeEnv['III_REDIS_SENTINEL_NAME']),
          III_REDIS_KEY_PREFIX: keyPrefix,
          III_ADVERTISE_HOST: '127.0.0.1',
        },
      });
      const toPrimary = new Redis({ host: '127.0.0.1', port: primary.port });
      try {
        const deadline = Date.now() + 10_000;
        let keys: string[] = [];
        while ((keys = await toPrimary.keys(`${keyPrefix}*`)).length === 0) {
          if (Date.now() > deadline)
            throw new Error(`no ${keyPrefix}* key on the primary within 10 s:\n${node.output()}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(keys.length).toBeGreaterThan(0);
        expect((await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`)).status).toBe(200);
      } finally {
        await toPrimary.quit();
      }
    }, 30_000);
  });
});

describe('deploy/make-dev-certs.sh', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-dev-certs-'));
    const run = spawnSync('sh', [path.join(ROOT, 'deploy/make-dev-certs.sh'), path.join(dir, 'certs')], {
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`make-dev-certs.sh failed (${run.status}): ${run.stderr}`);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('writes exactly the three files docker-compose.tls.yml mounts (the CA key is not kept)', () => {
    expect(fs.readdirSync(path.join(dir, 'certs')).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
  });

  test('a certificate signed by ca.crt for every name the nodes and clients dial', () => {
    const ca = new X509Certificate(fs.readFileSync(path.join(dir, 'certs/ca.crt')));
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'certs/tls.crt')));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    for (const host of [...ENGINE_SERVICES, 'lb', 'localhost'])
      expect([host, cert.checkHost(host)]).toEqual([host, host]);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('engine-4')).toBeUndefined();
  });

  test("the engine's config loader accepts the files through III_TLS_CERT_FILE, III_TLS_KEY_FILE and III_TLS_CA_FILE on every listener", () => {
    const { config } = loadConfig({
      path: path.join(ROOT, 'config/cluster.yaml'),
      env: {
        III_REDIS_URL: 'redis://redis:6379',
        III_TLS_CERT_FILE: path.join(dir, 'certs/tls.crt'),
        III_TLS_KEY_FILE: path.join(dir, 'certs/tls.key'),
        III_TLS_CA_FILE: path.join(dir, 'certs/ca.crt'),
      },
    });
    expect(config.listeners[0].tls?.certFile).toBe(path.join(dir, 'certs/tls.crt'));
    expect(config.tls?.http?.keyFile).toBe(path.join(dir, 'certs/tls.key'));
    expect(config.tls?.stream?.keyFile).toBe(path.join(dir, 'certs/tls.key'));
    expect(config.tls?.ca).toEqual(fs.readFileSync(path.join(dir, 'certs/ca.crt')));
  });
});

describe('the TLS balancer config in front of three real engine nodes with TLS', () => {
  let certs: string;
  let redis: TestRedis;
  let nodes: NodeProcess[] = [];
  let lb: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  let lbOutput = '';
  const lbPorts = { ws: 0, http: 0, stream: 0, stats: 0 };
  let ca: Buffer;

  beforeAll(async () => {
    const bin = haproxyBin();
    certs = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-tls-compose-'));
    const made = spawnSync('sh', [path.join(ROOT, 'deploy/make-dev-certs.sh'), certs], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`make-dev-certs.sh failed: ${made.stderr}`);
    ca = fs.readFileSync(path.join(certs, 'ca.crt'));
    redis = await startRedis();
    // docker-compose.tls.yml's engine environment, with the files where this test keeps them;
    // the nodes advertise 127.0.0.1 (in the certificate) instead of their service names.
    const env = {
      III_WORKER_TOKEN: WORKER_TOKEN,
      III_TLS_CERT_FILE: path.join(certs, 'tls.crt'),
      III_TLS_KEY_FILE: path.join(certs, 'tls.key'),
      III_TLS_CA_FILE: path.join(certs, 'ca.crt'),
      III_ADVERTISE_HOST: '127.0.0.1',
    };
    nodes = await Promise.all(
      ENGINE_SERVICES.map((nodeId) =>
        startNodeProcess({ nodeId, redisUrl: redis.url, keyPrefix: `compose-tls-${process.pid}:`, env }),
      ),
    );
    [lbPorts.ws, lbPorts.http, lbPorts.stream, lbPorts.stats] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    lb = await startBalancer(
      bin,
      localHaproxyConfig(HAPROXY_TLS_CFG, nodes, lbPorts),
      lbPorts.stats,
      (text) => (lbOutput += text),
    );
    // The example worker as docker-compose.tls.yml runs it: wss:// and NODE_EXTRA_CA_CERTS.
    worker = spawn(process.execPath, [path.join(ROOT, 'examples/compose-worker/worker.js')], {
      cwd: ROOT,
      env: {
        ...process.env,
        III_URL: `wss://127.0.0.1:${lbPorts.ws}`,
        III_WORKER_TOKEN: WORKER_TOKEN,
        NODE_EXTRA_CA_CERTS: path.join(certs, 'ca.crt'),
      },
      stdio: 'ignore',
    });
  }, 30_000);

  afterAll(async () => {
    for (const child of [worker, lb]) await stopChild(child);
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
    await redis?.stop();
    if (certs) fs.rmSync(certs, { recursive: true, force: true });
  });

  test('the example worker, on wss:// through the balancer, answers https:// requests made through it; the balancer checks the nodes on their plain metrics port', async () => {
    const hello = () => httpsGet(lbPorts.http, '/hello/Ada', ca);
    await waitFor(
      async () => (await hello()).status === 200,
      15_000,
      () => lbOutput,
    );
    expect(JSON.parse((await hello()).body)).toMatchObject({ message: 'Hello, Ada!' });
    // UP in every backend ("UP 1/2" is a node whose last check was slow on this busy machine).
    for (const server of ENGINE_SERVICES) {
      expect([server, (await serverStatuses(lbPorts.stats, server)).map((status) => status.split(' ')[0])]).toEqual([
        server,
        ['UP', 'UP', 'UP'],
      ]);
    }
  }, 30_000);

  test('the balancer does not terminate TLS: a plain http:// request through it gets no HTTP answer', async () => {
    await expect(fetch(`http://127.0.0.1:${lbPorts.http}/hello/Ada`)).rejects.toThrow();
  });
});

/** GET https://localhost:<port><path>, trusting `ca`; the status and body. */
function httpsGet(port: number, urlPath: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', servername: 'localhost', port, path: urlPath, ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Runs haproxy on `configFile` (its output to `onOutput`) until its stats port answers /healthz. */
async function startBalancer(
  bin: string,
  configFile: string,
  statsPort: number,
  onOutput: (text: string) => void,
): Promise<ChildProcess> {
  let output = '';
  const lb = spawn(bin, ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (c: Buffer): void => {
    output += c.toString();
    onOutput(c.toString());
  };
  lb.stdout.on('data', collect);
  lb.stderr.on('data', collect);
  try {
    await waitFor(
      async () => {
        if (lb.exitCode !== null) throw new Error(`haproxy exited with ${lb.exitCode}:\n${output}`);
        return (await fetch(`http://127.0.0.1:${statsPort}/healthz`)).status === 200;
      },
      10_000,
      () => output,
    );
  } catch (err) {
    await stopChild(lb);
    throw err;
  }
  return lb;
}

/** SIGTERM to a child still running, then waits for its exit. */
async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * The shipped balancer file with only addresses changed: node names -> 127.0.0.1 and each node's
 * own ports (health checks on its metrics port), frontends on the given free loopback ports.
 * Returns the path of the copy (in a temp dir).
 */
function localHaproxyConfig(
  shipped: string,
  nodes: NodeProcess[],
  lbPorts: { ws: number; http: number; stream: number; stats: number },
): string {
  const binds: Record<string, number> = {
    '49134': lbPorts.ws,
    '3111': lbPorts.http,
    '3112': lbPorts.stream,
    '8404': lbPorts.stats,
  };
  const text = fs
    .readFileSync(shipped, 'utf8')
    .replace(/^(\s*bind\s+):(\d+)/gm, (_, head: string, port: string) => `${head}127.0.0.1:${binds[port]}`)
    .replace(
      /^(\s*server\s+)(engine-(\d))\s+engine-\d:(\d+)/gm,
      (_, head: string, name: string, index: string, port: string) => {
        const node = nodes[Number(index) - 1];
        const local = { '49134': Number(new URL(node.url).port), '3111': node.httpPort, '3112': node.streamPort }[port];
        return `${head}${name} 127.0.0.1:${local} port ${node.metricsPort}`;
      },
    );
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iii-haproxy-')), 'haproxy.cfg');
  fs.writeFileSync(file, text);
  return file;
}

/** One TCP connection attempt: `settled` once connected or failed; open() while it stays up. */
interface Attempt {
  socket: Socket;
  settled: Promise<void>;
  open(): boolean;
}

function attempt(port: number): Attempt {
  let up = false;
  const socket = createConnection({ host: '127.0.0.1', port });
  const settled = new Promise<void>((resolve) => {
    socket.once('connect', () => {
      up = true;
      resolve();
    });
    socket.once('error', () => resolve());
  });
  socket.on('error', () => undefined);
  socket.once('close', () => (up = false));
  return { socket, settled, open: () => up };
}

/** The status column (UP, DOWN, ...) of one server in each backend, from the stats CSV. */
async function serverStatuses(statsPort: number, server: string): Promise<string[]> {
  const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
  const [header, ...rows] = csv
    .replace(/^# /, '')
    .trim()
    .split('\n')
    .map((line) => line.split(','));
  const column = header.indexOf('status');
  return rows.filter((row) => row[1] === server).map((row) => row[column]);
}

/** iii_connected_workers of one node. */
async function connectedWorkers(metricsPort: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('iii_connected_workers'));
    return line === undefined ? 0 : Number(line.split(/\s+/).pop());
  } catch {
    return -1;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let done = false;
    try {
      done = await check();
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('haproxy exited')) throw err;
    }
    if (done) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; haproxy said:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
