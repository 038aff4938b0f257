import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { startNodeProcess, type NodeProcess } from './node-process';

/**
 * An engine process on a project folder of its own (`config.yaml` and the stores it writes
 * there), stopped and started again on the same folder, with the iii-sdk clients a test opens on
 * it. `afterEach` kills the node and its clients; `afterAll` removes the folder.
 */
export function useProjectNode(
  nodeId: string,
  config: string,
): {
  /** Stops the running node with `signal` (its clients first), then starts one on the same folder. */
  restart(signal?: NodeJS.Signals): Promise<NodeProcess>;
  /** A worker that does not reconnect, closed with the node. */
  client(url: string, name: string): IIIClient;
  /** Shuts the clients opened so far down. */
  closeClients(): Promise<void>;
} {
  let dir = '';
  let node: NodeProcess | undefined;
  const clients: IIIClient[] = [];
  const closeClients = async () => {
    await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `iii-${nodeId}-`));
    await writeFile(join(dir, 'config.yaml'), config);
  });
  afterEach(async () => {
    await closeClients();
    await node?.kill('SIGKILL');
    node = undefined;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    async restart(signal = 'SIGKILL') {
      await closeClients();
      await node?.kill(signal);
      node = await startNodeProcess({ nodeId, cwd: dir, args: ['--config', 'config.yaml'] });
      return node;
    },
    client(url, name) {
      const c = registerWorker(url, {
        workerName: name,
        enableMetricsReporting: false,
        otel: { enabled: false },
        reconnectionConfig: { maxRetries: 0 },
      });
      clients.push(c);
      return c;
    },
    closeClients,
  };
}
