import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import type { DeadLetter, QueueJob, QueueSpec } from '../../src/modules/queue/adapters/adapter';
import { RabbitmqQueueAdapter } from '../../src/modules/queue/adapters/rabbitmq';
import { rabbitmqOptions } from '../../src/modules/queue/adapters/rabbitmq-options';
import { silentLogger } from '../../src/observability/logger';
import { EngineError } from '../../src/protocol/errors';
import { TriggerAction } from 'iii-sdk';
import { functionRegistered, sleep, startEngine, testConfig, waitFor } from '../support/engine';
import { startRabbit, type TestRabbit } from '../support/rabbitmq';

/**
 * The RabbitMQ queue adapter against a private rabbitmq-server (one per file; a fresh name
 * prefix per test keeps the tests' queues apart, as it keeps clusters apart on one broker).
 */

let rabbit: TestRabbit;
beforeAll(async () => {
  rabbit = await startRabbit();
}, 90_000);
afterAll(async () => {
  await rabbit?.dispose();
}, 30_000);

const open: RabbitmqQueueAdapter[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((adapter) => adapter.close(0)));
});

function adapter(
  namePrefix: string,
  dropped: DeadLetter[] = [],
  extra: { priorityField?: string; url?: string } = {},
): RabbitmqQueueAdapter {
  const made = new RabbitmqQueueAdapter({
    url: extra.url ?? rabbit.url,
    namePrefix,
    connectionName: 'test',
    logger: silentLogger,
    onDeadLetterDropped: (_q, letter) => dropped.push(letter),
    connectTimeoutMs: 3000,
    ...(extra.priorityField ? { priorityField: extra.priorityField } : {}),
  });
  open.push(made);
  return made;
}

const prefix = () => `t${randomUUID().slice(0, 8)}:`;
const Q = '__fn_queue::orders';

function spec(overrides: Partial<QueueSpec> = {}): QueueSpec {
  return {
    name: Q,
    label: 'orders',
    ordering: 'standard',
    concurrency: 4,
    maxAttempts: 3,
    backoffMs: 20,
    maxDepth: 1000,
    maxBytes: 1_000_000,
    overflow: 'reject',
    maxDeadLetters: 100,
    ...overrides,
  };
}

let seq = 0;
function job(id: string, data: Record<string, unknown> = { id }): QueueJob {
  return {
    id,
    functionId: 'fn',
    data: data as never,
    sizeBytes: JSON.stringify(data).length,
    enqueuedAtMs: Date.now() + ++seq,
  };
}

const letters = (a: RabbitmqQueueAdapter) => a.deadLetters(Q, 0, 100);

describe('rabbitmq queue adapter', () => {
  test('names every queue under the name prefix: main, retry per delay, dead letters', async () => {
    const p = prefix();
    await adapter(p).declare(spec({ maxAttempts: 3, backoffMs: 20 }));
    const conn = await connect(rabbit.url);
    const channel = await conn.createChannel();
    for (const name of [
      `${p}${Q}.queue`,
      `${p}${Q}::dlq.queue`,
      `${p}${Q}::retry.20ms.queue`,
      `${p}${Q}::retry.40ms.queue`,
    ]) {
      expect((await channel.checkQueue(name)).queue).toBe(name);
    }
    await conn.close();
  });

  test('a message that always fails is tried exactly max_attempts times, then dead-lettered with its last error', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 3 }));
    const attempts: number[] = [];
    await a.startConsumer(Q, async (_job, attempt) => {
      attempts.push(attempt);
      throw new Error(`boom ${attempt}`);
    });
    await a.enqueue(Q, job('m1'));
    const [letter] = await waitFor(async () => (await letters(a)).length === 1 && letters(a), 'a dead letter');
    await sleep(200);
    expect(attempts).toEqual([1, 2, 3]);
    expect(letter).toMatchObject({ job: { id: 'm1', data: { id: 'm1' } }, error: 'boom 3', attemptsMade: 3 });
    expect(letter.failedAtMs).toBeGreaterThan(Date.now() - 10_000);
    expect(await a.counts(Q)).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 1 });
  });

  test('a message that succeeds on its last attempt is not dead-lettered', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 3 }));
    const attempts: number[] = [];
    await a.startConsumer(Q, async (_job, attempt) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error('not yet');
    });
    await a.enqueue(Q, job('m1'));
    await waitFor(() => attempts.length === 3, 'three attempts');
    await waitFor(async () => (await a.counts(Q)).active === 0, 'settled');
    expect(await a.counts(Q)).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('the backoff between attempts grows exponentially from backoff_ms', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 4, backoffMs: 150 }));
    const at: number[] = [];
    await a.startConsumer(Q, async () => {
      at.push(Date.now());
      throw new Error('fail');
    });
    await a.enqueue(Q, job('m1'));
    await waitFor(async () => (await letters(a)).length === 1, 'a dead letter', 10_000);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    expect(gaps).toHaveLength(3);
    // 150, 300, 600 ms: lower bounds only (a busy machine delays, never hastens).
    expect(gaps[0]).toBeGreaterThanOrEqual(140);
    expect(gaps[1]).toBeGreaterThanOrEqual(290);
    expect(gaps[2]).toBeGreaterThanOrEqual(590);
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
  });

  test('counts: waiting without a consumer, delayed in a retry queue, dead letters', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 2, backoffMs: 60_000 }));
    await a.enqueue(Q, job('w1'));
    await a.enqueue(Q, job('w2'));
    expect(await a.counts(Q)).toEqual({ waiting: 2, delayed: 0, active: 0, deadLetters: 0 });
    await a.startConsumer(Q, async () => {
      throw new Error('fail');
    });
    // Both failed once and wait a minute in the retry queue.
    const counts = await waitFor(async () => {
      const c = await a.counts(Q);
      return c.delayed === 2 && c;
    }, 'two delayed');
    expect(counts).toEqual({ waiting: 0, delayed: 2, active: 0, deadLetters: 0 });
  });

  test('dead letters list oldest first with offset and limit, and listing loses none', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 1, concurrency: 1 }));
    await a.startConsumer(Q, async (j) => {
      throw new Error(`no ${j.id}`);
    });
    for (const id of ['d1', 'd2', 'd3', 'd4']) await a.enqueue(Q, job(id));
    await waitFor(async () => (await a.counts(Q)).deadLetters === 4, 'four dead letters');
    expect((await a.deadLetters(Q, 0, 10)).map((l) => l.job.id)).toEqual(['d1', 'd2', 'd3', 'd4']);
    expect((await a.deadLetters(Q, 1, 2)).map((l) => l.job.id)).toEqual(['d2', 'd3']);
    expect((await a.deadLetters(Q, 0, 10)).map((l) => l.error)).toEqual(['no d1', 'no d2', 'no d3', 'no d4']);
    expect((await a.counts(Q)).deadLetters).toBe(4);
  });

  test('redrive one, discard one, redrive all: attempts start again from 1', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxAttempts: 1, concurrency: 1 }));
    let healthy = false;
    const delivered: Array<[string, number]> = [];
    await a.startConsumer(Q, async (j, attempt) => {
      if (!healthy) throw new Error('down');
      delivered.push([j.id, attempt]);
    });
    for (const id of ['r1', 'r2', 'r3', 'r4']) await a.enqueue(Q, job(id));
    await waitFor(async () => (await a.counts(Q)).deadLetters === 4, 'four dead letters');
    healthy = true;

    expect(await a.redrive(Q, 'r3')).toBe(true);
    await waitFor(() => delivered.length === 1, 'r3 redelivered');
    expect(delivered).toEqual([['r3', 1]]);
    expect(await a.redrive(Q, 'r3')).toBe(false);

    expect(await a.discard(Q, 'r1')).toBe(true);
    expect(await a.discard(Q, 'r1')).toBe(false);
    expect((await letters(a)).map((l) => l.job.id)).toEqual(['r2', 'r4']);

    expect(await a.redriveAll(Q)).toBe(2);
    await waitFor(() => delivered.length === 3, 'the rest redelivered');
    expect(delivered.slice(1).sort()).toEqual([
      ['r2', 1],
      ['r4', 1],
    ]);
    expect((await a.counts(Q)).deadLetters).toBe(0);
  });

  test('dead letters beyond max_dead_letters are dropped oldest first, and reported', async () => {
    const dropped: DeadLetter[] = [];
    const a = adapter(prefix(), dropped);
    await a.declare(spec({ maxAttempts: 1, concurrency: 1, maxDeadLetters: 2 }));
    await a.startConsumer(Q, async () => {
      throw new Error('x');
    });
    for (const id of ['x1', 'x2', 'x3']) await a.enqueue(Q, job(id));
    await waitFor(() => dropped.length === 1, 'one dropped');
    expect(dropped[0].job.id).toBe('x1');
    expect((await letters(a)).map((l) => l.job.id)).toEqual(['x2', 'x3']);
  });

  test('a full queue refuses with queue_full; drop_oldest makes room instead', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ maxDepth: 2 }));
    await a.enqueue(Q, job('f1'));
    await a.enqueue(Q, job('f2'));
    const refused = await a.enqueue(Q, job('f3')).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(EngineError);
    expect((refused as EngineError).code).toBe('queue_full');

    await a.declare({ ...spec({ maxDepth: 2, overflow: 'drop_oldest' }), name: '__topic_backlog::t' });
    await a.enqueue('__topic_backlog::t', job('b1'));
    await a.enqueue('__topic_backlog::t', job('b2'));
    expect(await a.enqueue('__topic_backlog::t', job('b3'))).toBe(1);
    expect((await a.takeAll('__topic_backlog::t')).map((j) => j.id)).toEqual(['b2', 'b3']);
    expect((await a.counts('__topic_backlog::t')).waiting).toBe(0);
  });

  test('competing consumers on two nodes: every message is handled exactly once, by both nodes', async () => {
    const p = prefix();
    const [a, b] = [adapter(p), adapter(p)];
    await a.declare(spec({ concurrency: 2 }));
    await b.declare(spec({ concurrency: 2 }));
    const seen = new Map<string, string[]>();
    const handler = (node: string) => async (j: QueueJob) => {
      seen.set(j.id, [...(seen.get(j.id) ?? []), node]);
      await sleep(10);
    };
    await a.startConsumer(Q, handler('a'));
    await b.startConsumer(Q, handler('b'));
    for (let n = 0; n < 40; n++) await a.enqueue(Q, job(`c${n}`));
    await waitFor(() => seen.size === 40, '40 messages handled', 10_000);
    await sleep(200);
    expect([...seen.values()].every((nodes) => nodes.length === 1)).toBe(true);
    const byNode = [...seen.values()].flat();
    expect(byNode.filter((n) => n === 'a').length).toBeGreaterThan(0);
    expect(byNode.filter((n) => n === 'b').length).toBeGreaterThan(0);
  });

  test('a message in flight on a node closed hard is redelivered to the other node, attempt not counted', async () => {
    const p = prefix();
    const [a, b] = [adapter(p), adapter(p)];
    await a.declare(spec());
    await b.declare(spec());
    let release: () => void = () => undefined;
    const onA: string[] = [];
    await a.startConsumer(Q, (j) => {
      onA.push(j.id);
      return new Promise<void>((resolve) => (release = resolve));
    });
    await a.enqueue(Q, job('h1'));
    await waitFor(() => onA.length === 1, 'h1 in flight on a');
    const onB: Array<[string, number]> = [];
    await b.startConsumer(Q, async (j, attempt) => {
      onB.push([j.id, attempt]);
    });
    await a.close(0);
    await waitFor(() => onB.length === 1, 'h1 redelivered to b');
    expect(onB).toEqual([['h1', 1]]);
    // The abandoned delivery ends late: its acknowledgement goes nowhere, nothing breaks.
    release();
    await sleep(100);
    expect(await b.counts(Q)).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('priority_field: higher priorities are delivered first', async () => {
    const a = adapter(prefix(), [], { priorityField: 'prio' });
    await a.declare(spec({ concurrency: 1 }));
    for (const [id, prio] of [
      ['p1', 1],
      ['p0', 0],
      ['p9', 9],
      ['p5', 5],
      ['px', 42],
    ] as const)
      await a.enqueue(Q, job(id, { prio }));
    const order: string[] = [];
    await a.startConsumer(Q, async (j) => {
      order.push(j.id);
    });
    await waitFor(() => order.length === 5, 'five delivered');
    // 42 is clamped to the highest priority, 9, and was enqueued after p9.
    expect(order).toEqual(['p9', 'px', 'p5', 'p1', 'p0']);
  });

  test('FIFO: a failing message is retried before anything behind it', async () => {
    const a = adapter(prefix());
    await a.declare(spec({ ordering: 'fifo', maxAttempts: 3, backoffMs: 20 }));
    const order: string[] = [];
    await a.startConsumer(Q, async (j, attempt) => {
      order.push(`${j.id}#${attempt}`);
      if (j.id === 'o1' && attempt < 3) throw new Error('again');
    });
    for (const id of ['o1', 'o2', 'o3']) await a.enqueue(Q, job(id));
    await waitFor(() => order.length === 5, 'five attempts');
    expect(order).toEqual(['o1#1', 'o1#2', 'o1#3', 'o2#1', 'o3#1']);
  });

  test('adapter.config: amqp_url (default amqp://localhost:5672), priority_field, the cluster key prefix', () => {
    const context = { logger: silentLogger, nodeId: 'n1', cluster: { keyPrefix: 'iii:' } };
    const none = () => undefined;
    expect(rabbitmqOptions(context, none)).toMatchObject({
      url: 'amqp://localhost:5672',
      namePrefix: 'iii:',
      connectionName: 'iii:n1:queue',
    });
    expect(
      rabbitmqOptions({ ...context, options: { amqp_url: 'amqp://b:5673', priority_field: 'prio' } }, none),
    ).toMatchObject({ url: 'amqp://b:5673', priorityField: 'prio' });
    expect(() => rabbitmqOptions({ ...context, options: { amqp_url: 5672 } }, none)).toThrow(
      /adapter.config.amqp_url must be an amqp:\/\/ URL, got 5672/,
    );
    expect(() => rabbitmqOptions({ ...context, options: { priority_field: 3 } }, none)).toThrow(
      /adapter.config.priority_field must name a field/,
    );
  });

  test('bad URLs and an unreachable broker give clear errors', async () => {
    expect(() => adapter(prefix(), [], { url: 'not a url' })).toThrow(/amqp_url .* is not a URL/);
    expect(() => adapter(prefix(), [], { url: 'http://localhost:1' })).toThrow(/must start with amqp:\/\//);
    // A password holding "/" is hidden too (the adapter's own redaction used to miss it).
    expect(() => adapter(prefix(), [], { url: 'amqp://guest:se/cret@localhost:1' })).toThrow(
      /amqp_url "amqp:\/\/guest:\*\*\*@localhost:1" is not a URL/,
    );
    const nowhere = adapter(prefix(), [], { url: 'amqp://guest:secret@127.0.0.1:1' });
    await expect(nowhere.declare(spec())).rejects.toThrow(
      /Queue 'orders': RabbitMQ failed: no connection to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/,
    );
  });

  test('after a broker restart the consumers resume by themselves; enqueue fails fast while it is down', async () => {
    const a = adapter(prefix());
    await a.declare(spec());
    const got: string[] = [];
    await a.startConsumer(Q, async (j) => {
      got.push(j.id);
    });
    await a.enqueue(Q, job('before'));
    await waitFor(() => got.length === 1, 'delivered before the restart');

    await rabbit.stop();
    const started = Date.now();
    const refused = await waitFor<EngineError>(
      () =>
        a.enqueue(Q, job('down')).then(
          () => false as const,
          (err: unknown) => err as EngineError,
        ),
      'a refused enqueue',
    );
    expect(refused.code).toBe('enqueue_error');
    expect(refused.message).toMatch(/Queue 'orders': the message was not enqueued/);
    expect(Date.now() - started).toBeLessThan(5000);

    await rabbit.restart();
    await waitFor(
      () =>
        a.enqueue(Q, job('after')).then(
          () => true,
          () => false,
        ),
      'enqueue works again',
      20_000,
    );
    await waitFor(() => got.includes('after'), 'delivered after the restart', 10_000);
  }, 60_000);
});

describe('the queue module on RabbitMQ (adapter: rabbitmq)', () => {
  test('an engine configured for rabbitmq delivers an enqueued message to a worker, retrying a failure', async () => {
    const base = testConfig();
    const queue = {
      enabled: true,
      config: {
        adapter: { name: 'rabbitmq', config: { amqp_url: rabbit.url, backoff_ms: 20 } },
        queue_configs: { jobs: { max_retries: 2, backoff_ms: 20 } },
      },
    };
    const t = await startEngine({
      modules: { ...base.modules, queue },
      cluster: { keyPrefix: `e${randomUUID().slice(0, 6)}:` },
    });
    try {
      const worker = t.worker('jobs');
      const attempts: unknown[] = [];
      worker.registerFunction('jobs::run', async (data: { n: number }) => {
        attempts.push(data.n);
        if (attempts.length === 1) throw new Error('first attempt fails');
        return null;
      });
      await functionRegistered(t.engine, 'jobs::run');
      const receipt = await t
        .worker('producer')
        .trigger({ function_id: 'jobs::run', payload: { n: 7 }, action: TriggerAction.Enqueue({ queue: 'jobs' }) });
      expect(receipt).toMatchObject({ messageReceiptId: expect.any(String) });
      await waitFor(() => attempts.length === 2, 'the retried delivery', 15_000);
      expect(attempts).toEqual([7, 7]);
    } finally {
      await t.close();
    }
  });
});
