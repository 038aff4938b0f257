/**
 * Stream fan-out: `subscribers` VUs open the raw stream WebSocket (port 3112 by default) of every
 * node in turn and join one group; a second later `publishers` VUs call `stream::set` over a
 * worker socket at a fixed rate, each item carrying its send time. Every subscriber should get
 * every item once, whichever node wrote it: the runner compares `stream_deliveries` with
 * `stream_published` x subscribers (the fan-out ratio in the summary).
 */
import { Counter, Rate, Trend } from 'k6/metrics';
import { WebSocket } from 'k6/websockets';
import { clearInterval, setInterval, setTimeout } from 'k6/timers';
import { RUN, knob, latency, nodeFor, urls } from './lib/env.js';
import { connectWorker } from './lib/iii.js';

const WS = urls('III_WS_URLS');
const STREAMS = urls('III_STREAM_URLS');
const STREAM = 'lt-stream';
const GROUP = `${RUN}-fanout`;
const SUBSCRIBERS = knob('LT_SUBSCRIBERS', 6, 30);
const PUBLISHERS = knob('LT_PUBLISHERS', 3, 3);
const RATE_PER_PUBLISHER = knob('LT_PUBLISH_RATE', 10, 50); // stream::set calls per second
const PUBLISH_MS = knob('LT_DURATION_S', 3, 15) * 1000;
const JOIN_MS = 1500; // subscribers join before the first write
const DRAIN_MS = 2000; // subscribers stay this long after the last write

const delivery = new Trend('stream_delivery_ms', true);
const deliveries = new Counter('stream_deliveries');
const published = new Counter('stream_published');
const publishErrors = new Rate('stream_publish_errors');
const joined = new Counter('stream_subscribers_joined');

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscribe',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${(JOIN_MS + PUBLISH_MS + DRAIN_MS) / 1000 + 15}s`,
    },
    publishers: {
      executor: 'per-vu-iterations',
      exec: 'publish',
      vus: PUBLISHERS,
      iterations: 1,
      startTime: `${JOIN_MS}ms`,
      maxDuration: `${PUBLISH_MS / 1000 + 15}s`,
    },
  },
  thresholds: {
    stream_delivery_ms: latency(50, 100),
    stream_publish_errors: ['rate<0.01'],
    stream_deliveries: ['count>0'],
    stream_subscribers_joined: [`count==${SUBSCRIBERS}`],
  },
};

export function subscribe() {
  const socket = new WebSocket(`${nodeFor(STREAMS, __VU)}/`);
  socket.onopen = () => {
    socket.send(
      JSON.stringify({ type: 'join', data: { subscriptionId: `sub-${__VU}`, streamName: STREAM, groupId: GROUP } }),
    );
  };
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== 'stream' || !frame.event) return;
    if (frame.event.type === 'sync') joined.add(1);
    else if (frame.event.type === 'create') {
      deliveries.add(1);
      delivery.add(Date.now() - frame.event.data.sentAt);
    }
  };
  setTimeout(() => socket.close(), JOIN_MS + PUBLISH_MS + DRAIN_MS);
}

export function publish() {
  let n = 0;
  let timer;
  const pending = new Set();
  const worker = connectWorker(nodeFor(WS, __VU), {
    registered: () => {
      timer = setInterval(() => {
        const data = { stream_name: STREAM, group_id: GROUP, item_id: `${__VU}-${n++}`, data: { sentAt: Date.now() } };
        pending.add(worker.call('stream::set', data));
      }, 1000 / RATE_PER_PUBLISHER);
    },
    result: (message) => {
      if (!pending.delete(message.invocation_id)) return;
      publishErrors.add(message.error ? 1 : 0);
      if (!message.error) published.add(1);
    },
  });
  setTimeout(() => clearInterval(timer), PUBLISH_MS);
  setTimeout(() => {
    for (let i = 0; i < pending.size; i++) publishErrors.add(1);
    worker.close();
  }, PUBLISH_MS + 1000);
}
