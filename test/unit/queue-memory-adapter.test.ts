import type { QueueJob, QueueSpec } from '../../src/modules/queue/adapters/adapter';
import { createQueueAdapter } from '../../src/modules/queue/adapters';
import { MemoryQueueAdapter } from '../../src/modules/queue/adapters/memory';
import { MAX_BACKOFF_MS, backoffDelayMs } from '../../src/modules/queue/backoff';
import { Deque } from '../../src/modules/queue/deque';
import { DueHeap } from '../../src/modules/queue/due-heap';
import { silentLogger } from '../../src/observability/logger';
import { waitFor } from '../support/engine';

/** The in-memory queue adapter on its own: delivery, retries, FIFO lanes, limits, dead letters. */

function spec(overrides: Partial<QueueSpec> = {}): QueueSpec {
  return {
    name: 'q',
    label: 'q',
    ordering: 'standard',
    concurrency: 4,
    maxAttempts: 3,
    backoffMs: 5,
    maxDepth: 1000,
    maxBytes: 1_000_000,
    overflow: 'reject',
    maxDeadLetters: 100,
    ...overrides,
  };
}

let seq = 0;
function job(data: unknown, group?: string): QueueJob {
  const j: QueueJob = {
    id: `job-${++seq}`,
    functionId: 'fn',
    data: data as never,
    sizeBytes: JSON.stringify(data).length,
    enqueuedAtMs: Date.now() + seq,
  };
  if (group !== undefined) j.group = group;
  return j;
}

/** A promise settled from outside. */
function gate(): { promise: Promise<void>; open: () => void; fail: (e: Error) => void } {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

describe('queue backoff', () => {
  test('delay is backoff_ms * 2^(attempts-1), capped at one day', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(100, n))).toEqual([100, 200, 400, 800]);
    expect(backoffDelayMs(1000, 60)).toBe(MAX_BACKOFF_MS);
  });
});

describe('Deque', () => {
  test('keeps order across many push/shift/unshift operations', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 5000; i++) d.push(i);
    for (let i = 0; i < 4000; i++) expect(d.shift()).toBe(i);
    d.unshift(-1);
    expect(d.length).toBe(1001);
    expect([...d].slice(0, 3)).toEqual([-1, 4000, 4001]);
  });
});

describe('DueHeap', () => {
  test('pops in due order and popDue stops at the first item not yet due', () => {
    const heap = new DueHeap<{ readyAtMs: number }>();
    const times = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    for (const readyAtMs of times) heap.push({ readyAtMs });
    expect([...heap.popDue(499)].map((x) => x.readyAtMs)).toEqual(times.filter((t) => t <= 499).sort((a, b) => a - b));
    expect(heap.peek()!.readyAtMs).toBeGreaterThan(499);
    const rest: number[] = [];
    while (heap.length > 0) rest.push(heap.pop()!.readyAtMs);
    expect(rest).toEqual(times.filter((t) => t > 499).sort((a, b) => a - b));
  });
});

describe('MemoryQueueAdapter', () => {
  let adapter: MemoryQueueAdapter;
  beforeEach(() => {
    adapter = new MemoryQueueAdapter();
  });
  afterEach(async () => {
    await adapter.close(100);
  });

  test('an unknown adapter name is refused with the supported names', () => {
    const context = { logger: silentLogger, nodeId: 'n', cluster: { keyPrefix: 'iii:' } };
    expect(() => createQueueAdapter('kafka', { deadLetterDropped: () => undefined }, context)).toThrow(
      /adapter 'kafka' is not supported yet; supported adapters: builtin, redis, bullmq, rabbitmq, bridge/,
    );
  });

  test('concurrency bounds deliveries in flight', async () => {
    await adapter.declare(spec({ concurrency: 2 }));
    const gates: ReturnType<typeof gate>[] = [];
    let inFlight = 0;
    let peak = 0;
    await adapter.startConsumer('q', async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      const g = gate();
      gates.push(g);
      await g.promise;
      inFlight--;
    });
    for (let i = 0; i < 6; i++) await adapter.enqueue('q', job(i));
    expect(gates.length).toBe(2);
    expect(await adapter.counts('q')).toEqual({ waiting: 4, delayed: 0, active: 2, deadLetters: 0 });
    for (let done = 0; done < 6; done++) {
      await waitFor(() => gates[done], `delivery ${done}`);
      gates[done].open();
    }
    await waitFor(async () => (await adapter.counts('q')).active === 0 && gates.length === 6, 'all delivered');
    expect(peak).toBe(2);
  });

  test('a failing message is tried maxAttempts times, then dead-lettered with its last error', async () => {
    await adapter.declare(spec({ maxAttempts: 3, backoffMs: 1 }));
    const attempts: number[] = [];
    await adapter.startConsumer('q', async (_job, attempt) => {
      attempts.push(attempt);
      throw new Error(`boom ${attempt}`);
    });
    const j = job({ a: 1 });
    await adapter.enqueue('q', j);
    await waitFor(async () => (await adapter.counts('q')).deadLetters === 1, 'dead letter');
    expect(attempts).toEqual([1, 2, 3]);
    const [letter] = await adapter.deadLetters('q', 0, 10);
    expect(letter).toMatchObject({ job: { id: j.id, data: { a: 1 } }, error: 'boom 3', attemptsMade: 3 });
    expect(await adapter.counts('q')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 1 });
  });

  test('a retry waits for its backoff (delayed count) before the next attempt', async () => {
    await adapter.declare(spec({ maxAttempts: 2, backoffMs: 200 }));
    const attempts: number[] = [];
    await adapter.startConsumer('q', async (_job, attempt) => {
      attempts.push(attempt);
      if (attempt === 1) throw new Error('first fails');
    });
    await adapter.enqueue('q', job(1));
    await waitFor(() => attempts.length === 1, 'first attempt');
    await waitFor(async () => (await adapter.counts('q')).delayed === 1, 'delayed');
    await waitFor(() => attempts.length === 2, 'second attempt');
    expect(await adapter.counts('q')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('FIFO: a failing message blocks only its own group, and order holds per group', async () => {
    await adapter.declare(spec({ ordering: 'fifo', concurrency: 4, maxAttempts: 3, backoffMs: 150 }));
    const seen: string[] = [];
    let failedOnce = false;
    await adapter.startConsumer('q', async (j) => {
      const tag = (j.data as { tag: string }).tag;
      seen.push(tag);
      if (tag === 'a1' && !failedOnce) {
        failedOnce = true;
        throw new Error('a1 fails once');
      }
    });
    for (const [tag, group] of [
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['a3', 'a'],
      ['b2', 'b'],
    ] as const)
      await adapter.enqueue('q', job({ tag }, group));
    await waitFor(() => seen.length === 6, 'six deliveries');
    expect(seen.filter((t) => t.startsWith('a'))).toEqual(['a1', 'a1', 'a2', 'a3']);
    expect(seen.filter((t) => t.startsWith('b'))).toEqual(['b1', 'b2']);
    // Group b finished while a1 was backing off.
    expect(seen.indexOf('b2')).toBeLessThan(seen.lastIndexOf('a1'));
  });

  test('FIFO: one group never has two deliveries in flight', async () => {
    await adapter.declare(spec({ ordering: 'fifo', concurrency: 8 }));
    const active = new Map<string, number>();
    let overlap = false;
    let done = 0;
    await adapter.startConsumer('q', async (j) => {
      const n = (active.get(j.group!) ?? 0) + 1;
      active.set(j.group!, n);
      if (n > 1) overlap = true;
      await new Promise((r) => setTimeout(r, 2));
      active.set(j.group!, n - 1);
      done++;
    });
    for (let i = 0; i < 40; i++) await adapter.enqueue('q', job(i, `g${i % 3}`));
    await waitFor(() => done === 40, 'all delivered');
    expect(overlap).toBe(false);
  });

  test('maxDepth: a full queue refuses with queue_full; drop_oldest makes room instead', async () => {
    await adapter.declare(spec({ maxDepth: 2 }));
    await adapter.enqueue('q', job(1));
    await adapter.enqueue('q', job(2));
    await expect(adapter.enqueue('q', job(3))).rejects.toMatchObject({
      code: 'queue_full',
      message: "Queue 'q' is full: it holds 2 messages (max_depth); retry later or consume faster",
    });

    await adapter.declare(spec({ name: 'backlog', maxDepth: 2, overflow: 'drop_oldest' }));
    for (let i = 1; i <= 3; i++) await adapter.enqueue('backlog', job(i));
    expect(await adapter.enqueue('backlog', job(4))).toBe(1);
    expect((await adapter.takeAll('backlog')).map((j) => j.data)).toEqual([3, 4]);
  });

  test('maxBytes bounds the data a queue keeps, dead letters included; drop_oldest frees bytes too', async () => {
    await adapter.declare(spec({ maxBytes: 25, maxAttempts: 1 }));
    await adapter.startConsumer('q', async () => {
      throw new Error('dead');
    });
    const sized = (sizeBytes: number): QueueJob => ({ ...job('x'), sizeBytes });
    await adapter.enqueue('q', sized(10));
    await adapter.enqueue('q', sized(10));
    await waitFor(async () => (await adapter.counts('q')).deadLetters === 2, 'two dead letters');
    await expect(adapter.enqueue('q', sized(10))).rejects.toMatchObject({
      code: 'queue_full',
      message: expect.stringContaining('keeps 20 of its 25 bytes (max_queue_bytes'),
    });
    const [first] = await adapter.deadLetters('q', 0, 1);
    expect(await adapter.discard('q', first.job.id)).toBe(true);
    await adapter.enqueue('q', sized(10));

    await adapter.declare(spec({ name: 'backlog', maxBytes: 25, overflow: 'drop_oldest' }));
    for (let i = 0; i < 3; i++) await adapter.enqueue('backlog', sized(10));
    expect((await adapter.counts('backlog')).waiting).toBe(2);
  });

  test('maxDeadLetters keeps the newest dead letters and reports the dropped one', async () => {
    const dropped: string[] = [];
    adapter = new MemoryQueueAdapter((_q, letter) => dropped.push(letter.job.id));
    await adapter.declare(spec({ maxAttempts: 1, maxDeadLetters: 2 }));
    await adapter.startConsumer('q', async () => {
      throw new Error('no');
    });
    const jobs = [job(1), job(2), job(3)];
    for (const j of jobs) await adapter.enqueue('q', j);
    await waitFor(() => dropped.length === 1, 'drop');
    expect(dropped).toEqual([jobs[0].id]);
    expect((await adapter.deadLetters('q', 0, 10)).map((l) => l.job.id)).toEqual([jobs[1].id, jobs[2].id]);
  });

  test('redrive (one and all) resets attempts; discard deletes', async () => {
    await adapter.declare(spec({ maxAttempts: 1 }));
    let healthy = false;
    const delivered: unknown[] = [];
    await adapter.startConsumer('q', async (j, attempt) => {
      if (!healthy) throw new Error('down');
      delivered.push([j.data, attempt]);
    });
    const jobs = [job('a'), job('b'), job('c'), job('d')];
    for (const j of jobs) await adapter.enqueue('q', j);
    await waitFor(async () => (await adapter.counts('q')).deadLetters === 4, 'four dead letters');
    healthy = true;
    expect(await adapter.discard('q', jobs[0].id)).toBe(true);
    expect(await adapter.discard('q', jobs[0].id)).toBe(false);
    expect(await adapter.redrive('q', jobs[1].id)).toBe(true);
    await waitFor(() => delivered.length === 1, 'one redriven');
    expect(delivered).toEqual([['b', 1]]);
    expect(await adapter.redriveAll('q')).toBe(2);
    await waitFor(() => delivered.length === 3, 'all redriven');
    expect(await adapter.counts('q')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('stopConsumer keeps messages for the next consumer', async () => {
    await adapter.declare(spec());
    await adapter.startConsumer('q', async () => undefined);
    await adapter.stopConsumer('q');
    await adapter.enqueue('q', job(1));
    expect((await adapter.counts('q')).waiting).toBe(1);
    const got: unknown[] = [];
    await adapter.startConsumer('q', async (j) => void got.push(j.data));
    await waitFor(() => got.length === 1, 'delivered after restart');
  });

  test('close waits for deliveries in flight, but no longer than the grace period', async () => {
    await adapter.declare(spec());
    const g = gate();
    await adapter.startConsumer('q', () => g.promise);
    await adapter.enqueue('q', job(1));
    let closed = false;
    const closing = adapter.close(5000).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(closed).toBe(false);
    g.open();
    await closing;

    const stuck = new MemoryQueueAdapter();
    await stuck.declare(spec());
    await stuck.startConsumer('q', () => new Promise<void>(() => undefined));
    await stuck.enqueue('q', job(2));
    const started = Date.now();
    await stuck.close(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});
