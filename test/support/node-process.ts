import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClusterBus } from '../../src/config/types';
import { freePort } from './ports';

/** The repository root, from test/support or from its build under dist/ (the chaos runner). */
const ROOT = ((dir: string): string => {
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})(__dirname);
const BIN = path.join(ROOT, 'bin/iii-cluster.js');
const BUILT = path.join(ROOT, 'dist/src/cli.js');

/** An engine node running as its own process (`bin/iii-cluster.js`), as in production. */
export interface NodeProcess {
  nodeId: string;
  url: string;
  httpPort: number;
  streamPort: number;
  metricsPort: number;
  /** stdout (the JSON log lines) and stderr so far, for failure messages and log checks. */
  output(): string;
  /** Sends a signal; `SIGKILL` is a crash. Resolves when the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when the process exits, however that happens. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `redisUrl` and `keyPrefix`: a cluster node (without them, a single node); `bus`: its
 * `cluster.bus` (III_CLUSTER_BUS), default redis. `cwd`: its working directory (default a fresh
 * temporary one), `args`: more command-line arguments (e.g. `--config config.yaml`).
 */
export async function startNodeProcess(options: {
  nodeId: string;
  redisUrl?: string;
  keyPrefix?: string;
  bus?: ClusterBus;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  args?: string[];
}): Promise<NodeProcess> {
  if (!fs.existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first (npm test does it)`);
  const [wsPort, httpPort, streamPort, metricsPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const cwd = options.cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-'));
  const cluster =
    options.redisUrl === undefined
      ? {}
      : {
          III_REDIS_URL: options.redisUrl,
          III_REDIS_KEY_PREFIX: options.keyPrefix ?? '',
          III_CLUSTER_BUS: options.bus ?? 'redis',
        };
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [BIN, ...(options.args ?? [])], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      III_WS_PORT: String(wsPort),
      III_HTTP_PORT: String(httpPort),
      III_STREAM_PORT: String(streamPort),
      III_METRICS_PORT: String(metricsPort),
      III_NODE_ID: options.nodeId,
      ...cluster,
      LOG_LEVEL: 'warn',
      ...options.env,
    },
  });
  const capture = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const node: NodeProcess = {
    exited,
    nodeId: options.nodeId,
    url: `ws://127.0.0.1:${wsPort}`,
    httpPort,
    streamPort,
    metricsPort,
    output: () => output,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  const deadline = Date.now() + 15_000;
  while (!(await ready(metricsPort))) {
    if (child.exitCode !== null) throw new Error(`node ${options.nodeId} exited with ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) {
      await node.kill('SIGKILL');
      throw new Error(`node ${options.nodeId} not ready within 15 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return node;
}

async function ready(metricsPort: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    return response.status === 200;
  } catch {
    return false;
  }
}

export { freePort };
