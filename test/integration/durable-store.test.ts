import { TriggerAction } from 'iii-sdk';
import { waitFor } from '../support/engine';
import { useProjectNode } from '../support/project-node';

/**
 * `file_based` state, stream and builtin queue in one embedded store, against a real engine
 * process killed with SIGKILL while writes are in flight: every acknowledged write is there
 * after the restart, and the store opens.
 */

/** A project in the original's config shapes: the three modules on `file_based`, default-like paths. */
const CONFIG = `
workers:
  - name: iii-state
    config:
      adapter:
        name: kv
        config:
          store_method: file_based
          file_path: ./data/state_store.db
  - name: iii-stream
    config:
      adapter:
        name: kv
        config:
          store_method: file_based
          file_path: ./data/stream_store
  - name: iii-queue
    config:
      adapter:
        name: builtin
        config:
          store_method: file_based
          file_path: ./data/state_store.db
      queue_configs:
        # Deliveries start at boot, before the test's consumer registers: room to retry.
        jobs: { max_retries: 10, backoff_ms: 200 }
`;

const ROUNDS = 3;
/** Writes of each kind acknowledged per round before the kill lands (it lands mid-stream). */
const ACKS_BEFORE_KILL = 150;
/** Writes of each kind in flight at once. */
const IN_FLIGHT = 16;

const project = useProjectNode('durable', CONFIG);
const start = () => project.restart();
const client = (url: string, name: string) => project.client(url, name);

/**
 * Runs `write(n)` for n = 0, 1, ... with IN_FLIGHT at once until the engine dies; resolves with
 * the n whose write was acknowledged.
 */
function writeUntilKilled(
  write: (n: number) => Promise<unknown>,
  acked: Set<number>,
  stop: { stopped: boolean },
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (!stop.stopped) {
      const n = next++;
      try {
        await write(n);
        acked.add(n);
      } catch {
        return;
      }
    }
  };
  return Promise.all(Array.from({ length: IN_FLIGHT }, lane)).then(() => undefined);
}

describe('file_based state, stream and queue across kill -9', () => {
  it(`keep every acknowledged write over ${ROUNDS} crashes mid-write, and the store opens each time`, async () => {
    const state = new Map<string, number>();
    const items = new Map<string, number>();
    const enqueued = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      const engine = await start();
      const writer = client(engine.url, `writer-${round}`);
      const stop = { stopped: false };
      const acks = { state: new Set<number>(), stream: new Set<number>(), queue: new Set<number>() };
      const runs = [
        writeUntilKilled(
          (n) =>
            writer.trigger({
              function_id: 'state::set',
              payload: { scope: `r${round}`, key: `k${n}`, value: n },
              timeoutMs: 5000,
            }),
          acks.state,
          stop,
        ),
        writeUntilKilled(
          (n) =>
            writer.trigger({
              function_id: 'stream::set',
              payload: { stream_name: 's', group_id: `r${round}`, item_id: `i${n}`, data: { n } },
              timeoutMs: 5000,
            }),
          acks.stream,
          stop,
        ),
        // Nobody serves jobs::run yet: the messages wait in the queue.
        writeUntilKilled(
          (n) =>
            writer.trigger({
              function_id: 'jobs::run',
              payload: { id: `r${round}-${n}` },
              action: TriggerAction.Enqueue({ queue: 'jobs' }),
              timeoutMs: 5000,
            }),
          acks.queue,
          stop,
        ),
      ];
      await waitFor(
        () => Math.min(acks.state.size, acks.stream.size, acks.queue.size) >= ACKS_BEFORE_KILL,
        'writes acknowledged',
        20_000,
      );
      await engine.kill('SIGKILL');
      stop.stopped = true;
      await Promise.all(runs);
      for (const n of acks.state) state.set(`r${round}/k${n}`, n);
      for (const n of acks.stream) items.set(`r${round}/i${n}`, n);
      for (const n of acks.queue) enqueued.add(`r${round}-${n}`);
      await project.closeClients();
    }

    const engine = await start();
    const reader = client(engine.url, 'reader');
    for (const [path, n] of state) {
      const [scope, key] = path.split('/');
      await expect(reader.trigger({ function_id: 'state::get', payload: { scope, key } })).resolves.toBe(n);
    }
    for (const [path, n] of items) {
      const [group, item] = path.split('/');
      await expect(
        reader.trigger({ function_id: 'stream::get', payload: { stream_name: 's', group_id: group, item_id: item } }),
      ).resolves.toEqual({ n });
    }
    // Every acknowledged message is delivered once a consumer is there (at least once).
    const delivered = new Set<string>();
    reader.registerFunction('jobs::run', async (job: { id: string }) => {
      delivered.add(job.id);
      return null;
    });
    await waitFor(
      () => [...enqueued].every((id) => delivered.has(id)),
      `${enqueued.size} acknowledged messages delivered`,
      30_000,
    );
    expect(state.size).toBeGreaterThanOrEqual(ROUNDS * ACKS_BEFORE_KILL);
    expect(engine.output()).not.toMatch(/uncaught|unhandled/i);
  }, 120_000);
});
