/**
 * Queue throughput: `enqueuers` VUs keep `LT_INFLIGHT` enqueues each in flight over a worker
 * socket (`invokefunction` with `action: {type:'enqueue', queue:'default'}`) and record the time
 * to the receipt; the handler (workers/queue-handler.js, on every node) counts each job once.
 * After the enqueue phase, `drain` polls `lt::queue::stats` until the handled count stops moving
 * and reports it as `queue_handled` (and `queue_drain_ms`, the backlog left when enqueuing stopped);
 * the runner compares it with `queue_enqueued`.
 */
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { RUN, knob, latency, nodeFor, urls } from './lib/env.js';
import { connectWorker, now } from './lib/iii.js';

const WS = urls('III_WS_URLS');
const JOB = 'lt::queue::job';
const ENQUEUE_MS = knob('LT_DURATION_S', 3, 15) * 1000;
const INFLIGHT = knob('LT_INFLIGHT', 4, 8);
const SETTLE_MS = 1500; // the handled count is final once it has not moved for this long
const DRAIN_LIMIT_MS = 60000;

const enqueueMs = new Trend('queue_enqueue_ms', true);
const enqueued = new Counter('queue_enqueued');
const enqueueErrors = new Rate('queue_enqueue_errors');
const handled = new Counter('queue_handled');
const waitP95 = new Gauge('queue_wait_p95_ms');
const drainMs = new Gauge('queue_drain_ms');
const handledPerS = new Gauge('queue_handled_per_s');

export const options = {
  scenarios: {
    enqueuers: {
      executor: 'per-vu-iterations',
      exec: 'enqueue',
      vus: knob('LT_ENQUEUERS', 3, 6),
      iterations: 1,
      maxDuration: `${ENQUEUE_MS / 1000 + 15}s`,
    },
    drain: {
      executor: 'per-vu-iterations',
      exec: 'drain',
      vus: 1,
      iterations: 1,
      startTime: `${ENQUEUE_MS + 1000}ms`,
      maxDuration: `${DRAIN_LIMIT_MS / 1000 + 10}s`,
    },
  },
  thresholds: {
    queue_enqueue_ms: latency(100, 200),
    queue_enqueue_errors: ['rate<0.01'],
    queue_enqueued: ['count>0'],
    queue_handled: ['count>0'],
  },
};

export function enqueue() {
  const sentAt = new Map();
  const deadline = now() + ENQUEUE_MS;
  let n = 0;
  const send = () => {
    const id = worker.call(
      JOB,
      { run: RUN, id: `${__VU}-${n++}`, sentAt: Date.now() },
      { type: 'enqueue', queue: 'default' },
    );
    sentAt.set(id, now());
  };
  const worker = connectWorker(nodeFor(WS, __VU), {
    registered: () => {
      for (let i = 0; i < INFLIGHT; i++) send();
    },
    result: (message) => {
      const started = sentAt.get(message.invocation_id);
      if (started === undefined) return;
      sentAt.delete(message.invocation_id);
      enqueueMs.add(now() - started);
      const ok = !message.error && message.result && typeof message.result.messageReceiptId === 'string';
      enqueueErrors.add(ok ? 0 : 1);
      if (ok) enqueued.add(1);
      if (now() < deadline) send();
      else if (sentAt.size === 0) finish();
    },
  });
  const giveUp = setTimeout(() => {
    for (let i = 0; i < sentAt.size; i++) enqueueErrors.add(1);
    worker.close();
  }, ENQUEUE_MS + 10000);
  const finish = () => {
    clearTimeout(giveUp);
    worker.close();
  };
}

export function drain() {
  const started = now();
  let last = -1;
  let lastChange = now();
  let poll;
  let asked;
  const worker = connectWorker(WS[0], {
    registered: () => {
      poll = setInterval(() => {
        if (asked === undefined) asked = worker.call('lt::queue::stats', { run: RUN });
      }, 250);
    },
    result: (message) => {
      if (message.invocation_id !== asked) return;
      asked = undefined;
      const stats = message.result || { handled: 0, waitP95Ms: 0 };
      if (stats.handled !== last) {
        last = stats.handled;
        lastChange = now();
      }
      if (now() - lastChange >= SETTLE_MS || now() - started > DRAIN_LIMIT_MS) {
        clearInterval(poll);
        handled.add(stats.handled);
        waitP95.add(stats.waitP95Ms);
        drainMs.add(lastChange - started);
        // Jobs were handled from the first enqueue (about t=0) until the count last moved.
        handledPerS.add(stats.handled / ((ENQUEUE_MS + 1000 + lastChange - started) / 1000));
        worker.close();
      }
    },
  });
}
