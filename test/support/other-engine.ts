import { registerWorker, type IIIClient } from 'iii-sdk';
import { call, type Any } from './calls';
import { waitFor } from './engine';
import { freePort, startNodeProcess, type NodeProcess } from './node-process';

/**
 * The other engine of the bridge tests: an iii-cluster engine in a process of its own, on a
 * port fixed for the test so it can be killed and started again where the bridge looks for it,
 * and iii-sdk workers of its own. `reset()` (afterEach) stops them all.
 */
export class OtherEngine {
  port = 0;
  node: NodeProcess | undefined;
  private readonly workers: IIIClient[] = [];

  /** `cwd`/`args`: the process's working directory and arguments (e.g. a config file). */
  constructor(private readonly options: { cwd?: string; args?: string[] } = {}) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** A fresh port for the next test (beforeEach). */
  async pickPort(): Promise<void> {
    this.port = await freePort();
  }

  async start(env: NodeJS.ProcessEnv = {}): Promise<NodeProcess> {
    this.node = await startNodeProcess({
      nodeId: 'remote',
      ...this.options,
      env: { III_WS_PORT: String(this.port), ...env },
    });
    return this.node;
  }

  /** An iii-sdk worker of the other engine (with `token`: as its Bearer header). */
  worker(name: string, token?: string): IIIClient {
    const headers = token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } };
    const worker = registerWorker(this.url, {
      workerName: name,
      enableMetricsReporting: false,
      otel: { enabled: false },
      ...headers,
    });
    this.workers.push(worker);
    return worker;
  }

  /** Waits until the other engine lists `functionId` (asked through `worker`). */
  async has(worker: IIIClient, functionId: string): Promise<void> {
    await waitFor(
      async () => {
        const { functions } = await call(worker, 'engine::functions::list', {});
        return (functions as Any[]).some((f) => f.function_id === functionId);
      },
      `${functionId} on the other engine`,
      10_000,
    );
  }

  async stopWorkers(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.shutdown().catch(() => undefined)));
  }

  /** A crash (SIGKILL) of the other engine; its workers are left to notice. */
  async kill(): Promise<void> {
    await this.node?.kill('SIGKILL');
    this.node = undefined;
  }

  async reset(): Promise<void> {
    await this.stopWorkers();
    await this.kill();
  }
}
