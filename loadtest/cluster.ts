import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/support/node-process';

/** The repository root, from loadtest/ (ts-jest) or dist/loadtest/ (compiled). */
export const ROOT = findRoot(__dirname);

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'loadtest'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no repository root above ${from}`);
  }
}

/** A child process with its stderr kept for failure messages. */
export interface Child {
  name: string;
  process: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function track(name: string, child: ChildProcess): Child {
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    name,
    process: child,
    output: () => output,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** An engine node started as in production: `bin/iii-cluster.js --config config/cluster.yaml`. */
export interface EngineNode extends Child {
  wsUrl: string;
  httpUrl: string;
  streamUrl: string;
  metricsUrl: string;
}

export async function startEngineNode(nodeId: string, redisUrl: string, keyPrefix: string): Promise<EngineNode> {
  const built = path.join(ROOT, 'dist/src/cli.js');
  if (!fs.existsSync(built))
    throw new Error(`${built} is missing: run \`npm run build\` first (\`npm run loadtest\` does it)`);
  const [ws, httpPort, stream, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin/iii-cluster.js'), '--config', path.join(ROOT, 'config/cluster.yaml')],
    {
      cwd: fs.mkdtempSync(path.join(os.tmpdir(), 'iii-loadtest-node-')),
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        III_WS_PORT: String(ws),
        III_HTTP_PORT: String(httpPort),
        III_STREAM_PORT: String(stream),
        III_METRICS_PORT: String(metrics),
        III_NODE_ID: nodeId,
        III_REDIS_URL: redisUrl,
        III_REDIS_KEY_PREFIX: keyPrefix,
        LOG_LEVEL: 'warn',
      },
    },
  );
  const node: EngineNode = {
    ...track(nodeId, child),
    wsUrl: `ws://127.0.0.1:${ws}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    streamUrl: `ws://127.0.0.1:${stream}`,
    metricsUrl: `http://127.0.0.1:${metrics}`,
  };
  const deadline = Date.now() + 20_000;
  while (!(await isReady(node.metricsUrl))) {
    if (child.exitCode !== null) throw new Error(`node ${nodeId} exited with ${child.exitCode}: ${node.output()}`);
    if (Date.now() > deadline) {
      await node.stop(0);
      throw new Error(`node ${nodeId} not ready within 20 s: ${node.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return node;
}

async function isReady(metricsUrl: string): Promise<boolean> {
  try {
    return (await fetch(`${metricsUrl}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** A load-test worker (loadtest/workers/<file>) connected to every node; resolves once it prints `ready`. */
export async function startWorker(file: string, wsUrls: string[]): Promise<Child> {
  const child = spawn(process.execPath, [path.join(ROOT, 'loadtest/workers', file)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, III_WS_URLS: wsUrls.join(',') },
  });
  const worker = track(file, child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${file} not ready within 30 s: ${worker.output()}`)), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      void worker.stop(0).then(() => reject(err));
    };
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => fail(new Error(`${file} exited with ${code}: ${worker.output()}`)));
  });
  return worker;
}
