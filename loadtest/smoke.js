/**
 * Smoke: a few VUs for a few seconds on every node: /healthz and /readyz on the ops port, and the
 * HTTP trigger route served by the load-test worker (workers/http-handler.js). No error allowed.
 */
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { knob, latency, nodeFor, urls } from './lib/env.js';

const HTTP = urls('III_HTTP_URLS');
const OPS = urls('III_METRICS_URLS');

export const options = {
  vus: knob('LT_VUS', 2, 4),
  duration: `${knob('LT_DURATION_S', 3, 10)}s`,
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    'http_req_duration{kind:route}': latency(25, 50),
  },
};

export default function () {
  const node = exec.scenario.iterationInTest;
  const ops = nodeFor(OPS, node);
  check(http.get(`${ops}/healthz`, { tags: { kind: 'healthz' } }), { 'healthz 200': (r) => r.status === 200 });
  check(http.get(`${ops}/readyz`, { tags: { kind: 'readyz' } }), { 'readyz 200': (r) => r.status === 200 });
  const res = http.get(`${nodeFor(HTTP, node)}/lt/hello?name=smoke`, { tags: { kind: 'route' } });
  check(res, {
    'route 200': (r) => r.status === 200,
    'route answers from the worker': (r) => r.status === 200 && r.json('message') === 'hello smoke',
  });
}
