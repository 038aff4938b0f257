import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import { loadConfig } from '../../src/config/load';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import { createLogger, silentLogger } from '../../src/observability/logger';
import { functionRegistered, waitFor } from '../support/engine';
import { call, failure, rejection, type Any } from '../support/calls';

/**
 * `Engine.applySettings` module by module, on an in-process engine: settings that apply live do,
 * nothing in flight is lost, and each change that needs a restart is named.
 */

const ENV = {
  III_WS_PORT: '0',
  III_HTTP_PORT: '0',
  III_STREAM_PORT: '0',
  III_METRICS_PORT: '0',
  LOG_LEVEL: 'silent',
  III_NODE_ID: 'reload',
};

let dir: string;
let engine: Engine;
const clients: IIIClient[] = [];

async function load(text: string) {
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  const { config } = loadConfig({ path: file, env: ENV });
  config.listeners = config.listeners.map((l) => ({ ...l, host: '127.0.0.1' }));
  config.metrics = { host: '127.0.0.1', port: 0 };
  return config;
}

function worker(name: string): IIIClient {
  const client = registerWorker(`ws://127.0.0.1:${engine.port}`, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  clients.push(client);
  return client;
}

function yaml(queues: string, expose: string, sampling: number): string {
  return `
workers:
  - name: iii-worker-manager
    config:
      rbac:
        expose_functions: [${expose}]
  - name: iii-observability
    config: {sampling_ratio: ${sampling}}
  - name: iii-queue
    config:
      queue_configs:
${queues}
`;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-reload-modules-'));
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await engine.stop();
  await rm(dir, { recursive: true, force: true });
});

test('queue_configs: a new queue opens, a changed one takes its policy, queued jobs are kept; a removed one needs a restart', async () => {
  engine = createEngine(await load(yaml('        orders: {max_retries: 1, backoff_ms: 10}', '"*"', 1)), {
    logger: silentLogger,
  });
  await engine.start();
  const w = worker('queue-app');
  const got: Any[] = [];
  w.registerFunction('app::work', async (data: Any) => void got.push(data));
  await functionRegistered(engine, 'app::work');
  const enqueue = (queue: string, n: number) =>
    w.trigger({ function_id: 'app::work', payload: { n }, action: TriggerAction.Enqueue({ queue }) });
  expect((await rejection(enqueue('payments', 0))).message).toMatch(/Queue 'payments' not found/);

  const next = await load(
    yaml('        orders: {max_retries: 5, backoff_ms: 10}\n        payments: {max_retries: 2}', '"*"', 1),
  );
  const result = await engine.applySettings(next);
  expect(result).toEqual({ applied: ['iii-queue'], restart: [] });
  await enqueue('payments', 1);
  await enqueue('orders', 2);
  await waitFor(() => got.length === 2, 'both jobs');
  expect(got.map((d) => d.n).sort()).toEqual([1, 2]);

  const removed = await engine.applySettings(await load(yaml('        payments: {max_retries: 2}', '"*"', 1)));
  expect(removed.restart).toEqual([
    'iii-queue: queue_configs.orders (removed) changed; restart the engine to apply it',
  ]);
  await enqueue('orders', 3);
  await waitFor(() => got.length === 3, 'a job on the queue that keeps running until a restart');
});

test('rbac rules apply to connections made after the change; connections already open keep theirs', async () => {
  engine = createEngine(await load(yaml('        q: {}', 'match("public::*")', 1)), { logger: silentLogger });
  await engine.start();
  const owner = worker('owner');
  owner.registerFunction('secret::thing', async () => 'secret');
  owner.registerFunction('public::thing', async () => 'public');
  await functionRegistered(engine, 'secret::thing');
  const before = worker('before');
  expect(await call(before, 'public::thing', {})).toBe('public');
  expect((await failure(before, 'secret::thing', {})).code).toBe('FORBIDDEN');

  const result = await engine.applySettings(await load(yaml('        q: {}', 'match("*")', 1)));
  expect(result.applied).toContain('iii-worker-manager rbac');
  expect(await call(worker('after'), 'secret::thing', {})).toBe('secret');
  expect((await failure(before, 'secret::thing', {})).code).toBe('FORBIDDEN');
});

test('observability sampling applies at once; a key that needs a restart is named; an unchanged config changes nothing', async () => {
  engine = createEngine(await load(yaml('        q: {}', '"*"', 1)), { logger: silentLogger });
  await engine.start();
  const w = worker('traced');
  w.registerFunction('app::traced', async () => 'ok');
  await functionRegistered(engine, 'app::traced');
  const traces = async () => (await call(w, 'engine::traces::list', { function_id: 'app::traced' })).spans?.length ?? 0;
  await call(w, 'app::traced', {});
  await waitFor(async () => (await traces()) >= 1, 'a sampled span');

  const unchanged = await engine.applySettings(await load(yaml('        q: {}', '"*"', 1)));
  expect(unchanged).toEqual({ applied: [], restart: [] });
  const sampledOff = await engine.applySettings(
    await load(yaml('        q: {}', '"*"', 0).replace('sampling_ratio: 0', 'sampling_ratio: 0, memory_max_spans: 10')),
  );
  expect(sampledOff.restart).toEqual(['iii-observability: memory_max_spans changed; restart the engine to apply it']);
  const count = await traces();
  for (let i = 0; i < 5; i++) await call(w, 'app::traced', {});
  expect(await traces()).toBe(count);
});

test('the log level applies live to every logger of the engine, children made before the change included', async () => {
  const file = join(dir, 'config.yaml');
  const env = { ...ENV, LOG_LEVEL: '' };
  const withLevel = async (level: string) => {
    await writeFile(file, `workers:\n  - name: iii-observability\n    config: {level: ${level}}\n`);
    const { config } = loadConfig({ path: file, env });
    config.listeners = config.listeners.map((l) => ({ ...l, host: '127.0.0.1' }));
    config.metrics = { host: '127.0.0.1', port: 0 };
    return config;
  };
  const root = createLogger('error');
  const earlierChild = root.child({ module: 'made-before' });
  engine = createEngine(await withLevel('error'), { logger: root });
  await engine.start();
  const result = await engine.applySettings(await withLevel('debug'));
  expect(result.applied).toEqual(expect.arrayContaining(['log level debug', 'iii-observability']));
  expect(result.restart).toEqual([]);
  expect([root.level, earlierChild.level, earlierChild.child({ later: true }).level]).toEqual([
    'debug',
    'debug',
    'debug',
  ]);
  await engine.applySettings(await withLevel('warn'));
  expect(earlierChild.level).toBe('warn');
});
