/**
 * Worker protocol round trips, spoken raw over WebSocket (lib/iii.js). `servers` VUs register
 * `lt::ws::echo` (one pool spanning the nodes) and answer every `invokefunction`; `callers` VUs,
 * started a second later on every node, keep `LT_INFLIGHT` calls each in flight and record the
 * round trip of each (`ws_rtt`), so some calls cross nodes through Redis and some do not.
 */
import { Counter, Rate, Trend } from 'k6/metrics';
import { clearTimeout, setTimeout } from 'k6/timers';
import { knob, latency, nodeFor, urls } from './lib/env.js';
import { connectWorker, now } from './lib/iii.js';

const WS = urls('III_WS_URLS');
const FUNCTION_ID = 'lt::ws::echo';
const CALL_MS = knob('LT_DURATION_S', 3, 20) * 1000;
const START_MS = 1000; // callers wait for the servers' registrations to reach every node
const INFLIGHT = knob('LT_INFLIGHT', 4, 4);

const rtt = new Trend('ws_rtt', true);
const calls = new Counter('ws_calls');
const callErrors = new Rate('ws_call_errors');
const served = new Counter('ws_served');

export const options = {
  scenarios: {
    servers: {
      executor: 'per-vu-iterations',
      exec: 'serve',
      vus: knob('LT_SERVERS', 3, 6),
      iterations: 1,
      maxDuration: `${(START_MS + CALL_MS) / 1000 + 15}s`,
    },
    callers: {
      executor: 'per-vu-iterations',
      exec: 'callLoop',
      vus: knob('LT_CALLERS', 3, 6),
      iterations: 1,
      startTime: `${START_MS}ms`,
      maxDuration: `${CALL_MS / 1000 + 15}s`,
    },
  },
  thresholds: {
    ws_rtt: latency(25, 50),
    ws_call_errors: ['rate<0.01'],
    ws_calls: ['count>0'],
  },
};

export function serve() {
  const worker = connectWorker(nodeFor(WS, __VU), {
    registered: () => worker.registerFunction(FUNCTION_ID),
    invoke: (message) => {
      served.add(1);
      return { echo: message.data.n };
    },
  });
  // Stay registered until every caller has finished (callers stop sending after CALL_MS).
  setTimeout(() => worker.close(), START_MS + CALL_MS + 3000);
}

export function callLoop() {
  const sentAt = new Map();
  const deadline = now() + CALL_MS;
  let n = 0;
  const send = () => {
    const id = worker.call(FUNCTION_ID, { n: n++ });
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
      rtt.add(now() - started);
      calls.add(1);
      callErrors.add(message.error ? 1 : 0);
      if (now() < deadline) send();
      else if (sentAt.size === 0) finish();
    },
  });
  // A call that never comes back counts as an error; the socket closes either way.
  const giveUp = setTimeout(() => {
    for (let i = 0; i < sentAt.size; i++) callErrors.add(1);
    sentAt.clear();
    worker.close();
  }, CALL_MS + 10000);
  const finish = () => {
    clearTimeout(giveUp);
    worker.close();
  };
}
