import { TriggerAction, type IIIClient } from 'iii-sdk';
import { waitFor } from '../support/engine';
import { useProjectNode } from '../support/project-node';

/**
 * A single node whose builtin queue is `file_based` is a durable queue: a message part-way
 * through its retries keeps its attempt count across a `kill -9`, dead letters survive
 * restarts with their error and attempts, and a redriven or discarded letter stays gone.
 */

const MAX_ATTEMPTS = 3;
/** `slow` backs off long enough for the restarted engine and its worker to be back first. */
const SLOW_ATTEMPTS = 2;
const CONFIG = `
workers:
  - name: iii-queue
    config:
      adapter:
        name: builtin
        config:
          store_method: file_based
          file_path: ./data/queue_store
      queue_configs:
        jobs: { max_retries: ${MAX_ATTEMPTS}, backoff_ms: 200 }
        slow: { max_retries: ${SLOW_ATTEMPTS}, backoff_ms: 5000 }
`;

type Letter = { id: string; payload: { id: string }; error: unknown; retries: number };

const project = useProjectNode('queue-restart', CONFIG);
const restart = (signal: NodeJS.Signals) => project.restart(signal);

/** A worker serving `jobs::run`: it records every attempt and fails the ids in `failing`. */
function consumer(url: string, attempts: string[], failing: (id: string) => boolean): IIIClient {
  const c = project.client(url, 'jobs');
  c.registerFunction('jobs::run', async (job: { id: string }) => {
    attempts.push(job.id);
    if (failing(job.id)) throw new Error(`cannot run ${job.id}`);
    return null;
  });
  return c;
}

const letters = (c: IIIClient, topic = 'jobs'): Promise<Letter[]> =>
  c.trigger({ function_id: 'engine::queue::dlq_messages', payload: { topic } }) as Promise<Letter[]>;
const count = (attempts: string[], id: string): number => attempts.filter((a) => a === id).length;

test('retries, dead letters, redrive and discard survive restarts of a file_based queue', async () => {
  // Run 1: `doomed` fails all its attempts and lands in the DLQ; `interrupted` fails its first
  // attempt and the engine is killed while it backs off.
  let engine = await restart('SIGKILL');
  const before: string[] = [];
  let c = consumer(engine.url, before, () => true);
  await c.trigger({
    function_id: 'jobs::run',
    payload: { id: 'doomed' },
    action: TriggerAction.Enqueue({ queue: 'jobs' }),
  });
  await waitFor(async () => (await letters(c)).length === 1, 'doomed in the DLQ');
  await c.trigger({
    function_id: 'jobs::run',
    payload: { id: 'interrupted' },
    action: TriggerAction.Enqueue({ queue: 'slow' }),
  });
  await waitFor(() => count(before, 'interrupted') === 1, 'the first attempt of interrupted');
  // The failure is written down right after the worker's answer; the next attempt is 5 s away.
  await new Promise((r) => setTimeout(r, 150));
  expect(count(before, 'interrupted')).toBe(1);

  // Run 2 (after kill -9): interrupted goes on with its remaining attempts, not a fresh count.
  engine = await restart('SIGKILL');
  const after: string[] = [];
  c = consumer(engine.url, after, (id) => id === 'interrupted');
  await waitFor(async () => (await letters(c, 'slow')).length === 1, 'interrupted in the DLQ', 15_000);
  expect(count(before, 'interrupted') + count(after, 'interrupted')).toBe(SLOW_ATTEMPTS);
  expect(count(after, 'doomed')).toBe(0);
  const [doomed] = await letters(c);
  const [interrupted] = await letters(c, 'slow');
  expect([doomed.payload.id, doomed.retries, interrupted.payload.id, interrupted.retries]).toEqual([
    'doomed',
    MAX_ATTEMPTS,
    'interrupted',
    SLOW_ATTEMPTS,
  ]);
  expect(JSON.stringify(doomed.error)).toContain('cannot run doomed');

  // Redrive doomed: the worker now runs it; it is acknowledged and leaves the DLQ.
  const doomedId = doomed.id;
  await expect(
    c.trigger({ function_id: 'iii::queue::redrive_message', payload: { queue: 'jobs', message_id: doomedId } }),
  ).resolves.toMatchObject({ redriven: 1 });
  await waitFor(() => count(after, 'doomed') === 1, 'the redriven doomed delivered');

  // Run 3 (graceful stop): nothing acknowledged comes back; the remaining letter is kept.
  engine = await restart('SIGTERM');
  const third: string[] = [];
  c = consumer(engine.url, third, () => false);
  expect(await letters(c)).toEqual([]);
  expect((await letters(c, 'slow')).map((l) => [l.payload.id, l.retries])).toEqual([['interrupted', SLOW_ATTEMPTS]]);
  await expect(
    c.trigger({ function_id: 'iii::queue::discard_message', payload: { queue: 'slow', message_id: interrupted.id } }),
  ).resolves.toMatchObject({ message_id: interrupted.id });
  await new Promise((r) => setTimeout(r, 1000));
  expect(third).toEqual([]);

  // Run 4 (kill -9 again): the discard held.
  engine = await restart('SIGKILL');
  c = consumer(engine.url, [], () => false);
  expect([await letters(c), await letters(c, 'slow')]).toEqual([[], []]);
  expect(engine.output()).not.toMatch(/uncaught|unhandled/i);
}, 90_000);
