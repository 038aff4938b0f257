import { randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient, type InitOptions } from 'iii-sdk';
import { ephemeralConfig } from '../../src/config/ephemeral';
import { CLUSTER_BUSES, type ClusterBus, type EngineConfig } from '../../src/config/types';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import { silentLogger, type Logger } from '../../src/observability/logger';

/** One node, in memory, on free loopback ports: what every integration test starts from. */
export function testConfig(overrides: Partial<EngineConfig> = {}): EngineConfig {
  return ephemeralConfig({ nodeId: 'test-node', ...overrides });
}

/** `modules` of the test config with module `name` on, on loopback and port 0, and `block` added to its config. */
export function withModule(name: 'http' | 'stream', block: Record<string, unknown>): Pick<EngineConfig, 'modules'> {
  const modules = testConfig().modules;
  const current = modules[name];
  return {
    modules: {
      ...modules,
      [name]: { ...current, enabled: true, config: { ...current?.config, port: 0, host: '127.0.0.1', ...block } },
    },
  };
}

export interface TestEngine {
  engine: Engine;
  url: string;
  /** Starts an iii-sdk worker against this engine; stopped by `close()`. */
  worker(name: string, options?: InitOptions): IIIClient;
  close(): Promise<void>;
}

/** Every cluster test runs against each bus (`describe.each(BUSES)`). */
export const BUSES: readonly ClusterBus[] = CLUSTER_BUSES;

/**
 * `count` in-process nodes of one cluster (node-1, node-2, ...): one Redis, and a key prefix of
 * their own so tests sharing a Redis never see each other. `overrides` apply to every node.
 */
export async function startCluster(
  count: number,
  redisUrl: string,
  overrides: Partial<EngineConfig> = {},
  bus: ClusterBus = 'redis',
): Promise<{ nodes: TestEngine[]; keyPrefix: string }> {
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startEngine({ nodeId: `node-${i + 1}`, cluster: { redisUrl, keyPrefix, bus }, ...overrides }),
    ),
  );
  return { nodes, keyPrefix };
}

/** `logger` (default: silent) lets a test read what the engine logs. */
export async function startEngine(
  overrides: Partial<EngineConfig> = {},
  env?: NodeJS.ProcessEnv,
  logger: Logger = silentLogger,
): Promise<TestEngine> {
  const engine = createEngine(testConfig(overrides), { logger, env });
  await engine.start();
  const url = `ws://127.0.0.1:${engine.port}`;
  const workers: IIIClient[] = [];
  return {
    engine,
    url,
    worker(name, options = {}) {
      const client = registerWorker(url, {
        workerName: name,
        enableMetricsReporting: false,
        otel: { enabled: false },
        ...options,
      });
      workers.push(client);
      return client;
    },
    async close() {
      await Promise.all(workers.map((w) => w.shutdown().catch(() => undefined)));
      // A worker whose socket is closed before the drain leaves at once; one the drain closes has
      // its entries held for a reconnection elsewhere (cluster mode, up to 5 s). Wait briefly.
      const deadline = Date.now() + 1000;
      while (Date.now() < deadline && (await engine.metrics.connectedWorkers.get()).values.some((v) => v.value > 0))
        await sleep(10);
      await engine.stop();
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the engine's registry lists `functionId` (registration has no ack on the wire). */
export function functionRegistered(engine: Engine, functionId: string, count = 1): Promise<true> {
  return waitFor(() => engine.registry.pool(functionId).length >= count, `function ${functionId} x${count}`);
}
