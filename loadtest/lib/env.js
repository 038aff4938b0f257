/**
 * What every k6 script reads from the environment. loadtest/run.ts sets these; a script run by
 * hand needs them too (`k6 run -e III_HTTP_URLS=http://127.0.0.1:3111 ...`).
 */

/** A comma-separated list from `__ENV[name]`; fails the run at init when it is missing. */
export function urls(name) {
  const value = __ENV[name];
  if (!value)
    throw new Error(
      `${name} is not set: start the scripts through \`npm run loadtest\` (loadtest/run.ts), or pass -e ${name}=<url>[,<url>...]`,
    );
  return value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/** `LT_PROFILE=smoke` (a few seconds per script, what CI runs) or `full` (the default). */
export const SMOKE = __ENV.LT_PROFILE === 'smoke';

/** The smoke or the full value of a knob; `__ENV[name]` overrides both. */
export function knob(name, smoke, full) {
  const value = __ENV[name];
  if (value !== undefined && value !== '') return Number(value);
  return SMOKE ? smoke : full;
}

/**
 * Latency thresholds (ms) of a run: the full profile holds the targets; the smoke profile, which
 * CI runs next to other tests on a busy machine, checks errors and counts and only catches a
 * latency off by an order of magnitude. `LT_P95_MS` / `LT_P99_MS` override both.
 */
export function latency(p95, p99) {
  const scale = SMOKE ? 10 : 1;
  return [`p(95)<${knob('LT_P95_MS', p95 * scale, p95)}`, `p(99)<${knob('LT_P99_MS', p99 * scale, p99)}`];
}

/** A name unique to this run, so repeated runs against one Redis never see each other's data. */
export const RUN = __ENV.LT_RUN || `run-${Date.now().toString(36)}`;

/** The node a VU talks to: VUs are spread over the nodes round robin. */
export function nodeFor(list, index) {
  return list[index % list.length];
}
