/**
 * HTTP trigger under an open model: a constant arrival rate of GET /lt/hello spread over every
 * node; each request is routed to the worker function `lt::http::hello` (workers/http-handler.js,
 * one connection per node, so calls mostly stay on the node that took the request).
 */
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { knob, latency, nodeFor, urls } from './lib/env.js';

const HTTP = urls('III_HTTP_URLS');
const RATE = knob('LT_RATE', 200, 1500);

export const options = {
  scenarios: {
    http_trigger: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${knob('LT_DURATION_S', 3, 20)}s`,
      preAllocatedVUs: knob('LT_VUS', 20, 100),
      maxVUs: knob('LT_MAX_VUS', 50, 400),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: latency(25, 100),
    checks: ['rate>0.99'],
    // The arrival rate was held: fewer than 1 % of the planned requests were dropped for lack of VUs.
    dropped_iterations: [`count<${Math.max(1, Math.floor(RATE * knob('LT_DURATION_S', 3, 20) * 0.01))}`],
  },
};

export default function () {
  const i = exec.scenario.iterationInTest;
  const res = http.get(`${nodeFor(HTTP, i)}/lt/hello?name=k6`);
  check(res, {
    'status 200': (r) => r.status === 200,
    'worker answered': (r) => r.status === 200 && r.json('message') === 'hello k6',
  });
}
