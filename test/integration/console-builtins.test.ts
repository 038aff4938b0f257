import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { IIIClient } from 'iii-sdk';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { RawClient } from '../support/raw-client';
import { call, failure, type Any } from '../support/calls';

/**
 * The built-ins the iii web console calls (iii-modules.md §11.2, §12): engine::metrics::list,
 * engine::rollups::list, engine::alerts::list|evaluate, engine::sampling::rules, the attribute
 * filters of engine::traces::list, engine::traces::group_by, engine::workers::info latest_metrics.
 * Real iii-sdk workers make every call counted.
 */

/** An engine whose iii-observability block is `config`; `lines` collects what it logs at warn and above. */
async function startWith(config: Record<string, unknown>, lines?: Array<Record<string, unknown>>): Promise<TestEngine> {
  const base = testConfig();
  const logger = lines
    ? pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
    : undefined;
  return startEngine({ modules: { ...base.modules, observability: { enabled: true, config } } }, undefined, logger);
}

/** A worker serving `${prefix}::ok` (echo) and `${prefix}::fail` (throws). */
async function serving(t: TestEngine, name: string, prefix: string): Promise<IIIClient> {
  const w = t.worker(name);
  w.registerFunction(`${prefix}::ok`, async (data: Any) => {
    await sleep(2);
    return data;
  });
  w.registerFunction(`${prefix}::fail`, async () => {
    throw new Error('failing on purpose');
  });
  await functionRegistered(t.engine, `${prefix}::fail`);
  return w;
}

async function rawCall(client: RawClient, functionId: string, extra: Record<string, unknown>): Promise<Any> {
  const invocationId = randomUUID();
  client.send({ type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data: {}, ...extra });
  return client.next((m) => m.type === 'invocationresult' && m.invocation_id === invocationId, 5000);
}

const byFunction = (metrics: Any, id: string): Any =>
  metrics.engine_metrics.invocations.by_function.find((f: Any) => f.function_id === id);

describe('console built-ins', () => {
  describe('metrics, rollups and traces', () => {
    let t: TestEngine;
    let w: IIIClient;
    beforeAll(async () => {
      t = await startWith({});
      w = await serving(t, 'metered', 'cm');
    });
    afterAll(() => t.close());

    test('engine::metrics::list: invocations, errors, latency, workers and process figures move with real calls', async () => {
      const before = await call(w, 'engine::metrics::list', {});
      for (let i = 0; i < 3; i++) await call(w, 'cm::ok', { i });
      const err = await failure(w, 'cm::fail', {});
      await failure(w, 'cm::fail', {});
      const after = await call(w, 'engine::metrics::list', {});

      expect(Object.keys(after).sort()).toEqual(['engine_metrics', 'sdk_metrics', 'timestamp']);
      expect(after.timestamp).toBeGreaterThanOrEqual(before.timestamp);
      const inv = after.engine_metrics.invocations;
      // The five calls, plus the first metrics::list itself.
      expect(inv.total - before.engine_metrics.invocations.total).toBeGreaterThanOrEqual(6);
      expect(inv.error - before.engine_metrics.invocations.error).toBe(2);
      expect(inv.success + inv.error).toBe(inv.total);
      expect(byFunction(after, 'cm::ok')).toMatchObject({
        total: 3,
        success: 3,
        error: 0,
        avg_ms: expect.any(Number),
        p50_ms: expect.any(Number),
        p99_ms: expect.any(Number),
      });
      expect(byFunction(after, 'cm::ok').p50_ms).toBeGreaterThan(0);
      expect(byFunction(after, 'cm::fail')).toMatchObject({
        total: 2,
        success: 0,
        error: 2,
        errors_by_code: { [err.code]: 2 },
      });
      expect(byFunction(before, 'cm::ok')).toBeUndefined();

      expect(after.engine_metrics.workers).toMatchObject({ connected: 1, on_this_node: 1, by_runtime: { node: 1 } });
      const perf = after.engine_metrics.performance;
      expect(perf.p50_ms).toEqual(expect.any(Number));
      expect(perf.p99_ms).toBeGreaterThanOrEqual(perf.p50_ms);
      expect(perf.memory.rss_bytes).toBeGreaterThan(0);
      expect(perf.memory.heap_used_bytes).toBeGreaterThan(0);
      expect(perf.pending_calls).toBe(0);
      expect(perf.uptime_seconds).toEqual(expect.any(Number));
      expect(perf.event_loop_lag_ms === null || perf.event_loop_lag_ms >= 0).toBe(true);
      // The Prometheus registry is still there, by metric_name.
      const named = await call(w, 'engine::metrics::list', { metric_name: 'iii_invocations_total' });
      expect(named.engine_metrics.prometheus).toHaveLength(1);
      expect(named.engine_metrics.prometheus[0].values).toContainEqual(
        expect.objectContaining({
          labels: expect.objectContaining({ function: 'cm::fail', outcome: err.code }),
          value: 2,
        }),
      );
    });

    test('engine::metrics::list with a time range and aggregate_interval answers aggregated_metrics and the query', async () => {
      const since = Date.now() - 60_000;
      await call(w, 'cm::ok', {});
      const out = await call(w, 'engine::metrics::list', {
        start_time: since,
        aggregate_interval: 3600,
        metric_name: 'invocations.total',
      });
      expect(out.query).toEqual({ start_time: since, metric_name: 'invocations.total', aggregate_interval: 3600 });
      expect(out.aggregated_metrics.length).toBeGreaterThanOrEqual(1);
      const last = out.aggregated_metrics[out.aggregated_metrics.length - 1];
      expect(Object.keys(last.metrics)).toEqual(['invocations.total']);
      expect(last.metrics['invocations.total']).toMatchObject({
        count: expect.any(Number),
        last: expect.any(Number),
        increase: expect.any(Number),
      });
      expect(last.end_time - last.start_time).toBe(3_600_000);
      // Nanoseconds (the trace/log unit) are understood too.
      const ns = await call(w, 'engine::metrics::list', { start_time: since * 1e6 });
      expect(ns.query.start_time).toBe(since);
      expect(Object.keys(ns.aggregated_metrics[0].metrics)).toEqual(
        expect.arrayContaining(['invocations.error', 'latency.p99_ms', 'memory.rss_bytes', 'workers.connected']),
      );
    });

    test('engine::rollups::list: 1 min, 5 min and 1 h buckets whose increase counts the calls', async () => {
      const start = await call(w, 'engine::rollups::list', { level: '1m', metric_name: 'invocations.success' });
      const total = (r: Any) =>
        r.rollups[0].buckets.reduce((sum: number, b: Any) => sum + b.metrics['invocations.success'].increase, 0);
      await sleep(1100); // queries add a sample at most once per second
      for (let i = 0; i < 4; i++) await call(w, 'cm::ok', { i });
      const after = await call(w, 'engine::rollups::list', { level: '1m', metric_name: 'invocations.success' });
      expect(after.rollups).toHaveLength(1);
      expect(after.rollups[0]).toMatchObject({ level: '1m', interval_seconds: 60 });
      // The four calls, the first rollups call and perhaps others of this file's tests in the same minute.
      expect(total(after) - total(start)).toBeGreaterThanOrEqual(5);
      const bucket = after.rollups[0].buckets[after.rollups[0].buckets.length - 1];
      expect(bucket.start_time % 60_000).toBe(0);
      expect(bucket.samples).toBeGreaterThanOrEqual(1);

      const all = await call(w, 'engine::rollups::list', {});
      expect(all.rollups.map((r: Any) => [r.level, r.interval_seconds])).toEqual([
        ['1m', 60],
        ['5m', 300],
        ['1h', 3600],
      ]);
      const hour = all.rollups[2].buckets[all.rollups[2].buckets.length - 1];
      expect(hour.metrics['invocations.total'].last).toBeGreaterThan(0);
      expect(hour.metrics['memory.rss_bytes']).toMatchObject({
        min: expect.any(Number),
        max: expect.any(Number),
        avg: expect.any(Number),
      });
      expect((await failure(w, 'engine::rollups::list', { level: '2m' })).code).toBe('deserialization_error');
    });

    test('engine::traces::list: attributes (all must hold) and exclude_attributes (pairs or bare keys)', async () => {
      await call(w, 'cm::ok', {});
      await failure(w, 'cm::fail', {});
      const only = await call(w, 'engine::traces::list', { attributes: [['iii.function.id', 'cm::fail']] });
      expect(only.total).toBeGreaterThanOrEqual(1);
      expect(only.spans.every((s: Any) => s.name === 'cm::fail')).toBe(true);
      const both = await call(w, 'engine::traces::list', {
        attributes: [
          ['iii.function.id', 'cm::fail'],
          ['iii.error.code', 'no-such-code'],
        ],
      });
      expect(both.total).toBe(0);
      const withoutFail = await call(w, 'engine::traces::list', {
        exclude_attributes: [['iii.function.id', 'cm::fail']],
        limit: 1000,
      });
      expect(withoutFail.spans.some((s: Any) => s.name === 'cm::ok')).toBe(true);
      expect(withoutFail.spans.some((s: Any) => s.name === 'cm::fail')).toBe(false);
      const noErrors = await call(w, 'engine::traces::list', { exclude_attributes: ['iii.error.code'], limit: 1000 });
      expect(noErrors.spans.some((s: Any) => s.status === 'error')).toBe(false);
      expect(noErrors.total).toBeGreaterThan(0);
      expect((await failure(w, 'engine::traces::list', { attributes: ['iii.function.id'] })).code).toBe(
        'deserialization_error',
      );
    });

    test('engine::traces::group_by: spans by attribute value with counts, errors, traces and times', async () => {
      // Functions of this test alone: span times come from OTel's clock, which may drift a few ms from Date.now().
      await serving(t, 'grouped', 'gb');
      const since = Date.now() - 60_000;
      await call(w, 'gb::ok', {});
      await call(w, 'gb::ok', {});
      await failure(w, 'gb::fail', {});
      const out = await call(w, 'engine::traces::group_by', { attribute: 'iii.function.id', since_ms: since });
      const ok = out.groups.find((g: Any) => g.value === 'gb::ok');
      const fail = out.groups.find((g: Any) => g.value === 'gb::fail');
      expect(ok).toMatchObject({ label: 'gb::ok', span_count: 2, error_count: 0 });
      expect(ok.trace_ids).toHaveLength(2);
      expect(ok.first_seen_ms).toBeGreaterThanOrEqual(since);
      expect(ok.last_seen_ms).toBeGreaterThanOrEqual(ok.first_seen_ms);
      expect(ok.duration_ms).toBeCloseTo(ok.last_seen_ms - ok.first_seen_ms, 6);
      expect(fail).toMatchObject({ span_count: 1, error_count: 1 });
      expect(out.groups.some((g: Any) => g.value.startsWith('engine::'))).toBe(false);
      // Newest group first, `limit` groups at most, the label from another attribute when asked.
      const labelled = await call(w, 'engine::traces::group_by', {
        attribute: 'iii.function.id',
        since_ms: since,
        label_attribute: 'iii.error.code',
        limit: 1,
      });
      expect(labelled.groups).toHaveLength(1);
      expect(labelled.groups[0]).toMatchObject({ value: 'gb::fail', label: expect.any(String) });
      expect(labelled.groups[0].label).not.toBe('gb::fail');
      const future = await call(w, 'engine::traces::group_by', {
        attribute: 'iii.function.id',
        since_ms: Date.now() + 60_000,
      });
      expect(future.groups).toEqual([]);
      expect((await failure(w, 'engine::traces::group_by', {})).code).toBe('deserialization_error');
    });
  });

  describe('sampling rules', () => {
    test('a rule with rate 0 for one function id leaves it without spans; another function keeps its spans', async () => {
      const t = await startWith({ sampling: { default: 1, rules: [{ operation: 'quiet::*', rate: 0 }] } });
      try {
        const w = await serving(t, 'quiet-worker', 'quiet');
        w.registerFunction('loud::ok', async () => 'loud');
        await functionRegistered(t.engine, 'loud::ok');
        for (let i = 0; i < 3; i++) {
          await call(w, 'quiet::ok', {});
          await call(w, 'loud::ok', {});
        }
        await waitFor(
          async () => (await call(w, 'engine::traces::list', { name: 'loud::ok' })).total === 3,
          'three loud spans',
        );
        expect((await call(w, 'engine::traces::list', { name: 'quiet::ok' })).total).toBe(0);
        // Counted all the same.
        const metrics = await call(w, 'engine::metrics::list', {});
        expect(byFunction(metrics, 'quiet::ok').total).toBe(3);
        expect(await call(w, 'engine::sampling::rules', {})).toEqual({
          enabled: true,
          sampling_ratio: 1,
          default: 1,
          parent_based: true,
          rules: [{ operation: 'quiet::*', rate: 0 }],
          rate_limit: null,
        });
      } finally {
        await t.close();
      }
    });

    test('parent_based: a sampled caller keeps the span despite the rule; with parent_based false the rule decides', async () => {
      const traceparent = (id: string) => `00-${id}-00f067aa0ba902b7-01`;
      for (const parentBased of [true, false]) {
        const t = await startWith({
          sampling: { parent_based: parentBased, rules: [{ operation: 'quiet::ok', service: 'ii?', rate: 0 }] },
        });
        const caller = await RawClient.connect(t.url);
        try {
          const w = await serving(t, 'quiet-worker', 'quiet');
          const traceId = randomUUID().replace(/-/g, '');
          expect((await rawCall(caller, 'quiet::ok', { traceparent: traceparent(traceId) })).error).toBeUndefined();
          await call(w, 'quiet::ok', {}); // no parent: the rule applies either way
          await sleep(50);
          const spans = await call(w, 'engine::traces::list', { name: 'quiet::ok' });
          expect(spans.spans.map((s: Any) => s.trace_id)).toEqual(parentBased ? [traceId] : []);
        } finally {
          caller.close();
          await t.close();
        }
      }
    });
  });

  describe('alerts', () => {
    test('a rule crossed by real failing calls fires in engine::alerts::evaluate and list, logs its warning once per cooldown, calls a function action and POSTs a webhook', async () => {
      const lines: Array<Record<string, unknown>> = [];
      const hooked: Any[] = [];
      const hook = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          hooked.push({ path: req.url, type: req.headers['content-type'], alert: JSON.parse(body) });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
      const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks/secret-token`;
      const t = await startWith(
        {
          alerts: [
            {
              name: 'errors',
              metric: 'invocations.error',
              threshold: 2,
              operator: '>=',
              window_seconds: 60,
              cooldown_seconds: 600,
              action: { type: 'log' },
            },
            {
              name: 'paged',
              metric: 'invocations.error',
              threshold: 1,
              operator: 'greaterthan',
              action: { type: 'function', path: 'alerted::page' },
            },
            {
              name: 'hooked',
              metric: 'invocations.error',
              threshold: 3,
              operator: '==',
              action: { type: 'webhook', url: hookUrl },
            },
            { name: 'crowd', metric: 'workers.connected', threshold: 100, operator: '>' },
            { name: 'typo', metric: 'no.such.metric', threshold: 1, operator: '>' },
          ],
        },
        lines,
      );
      try {
        const w = await serving(t, 'alerting', 'al');
        const paged: Any[] = [];
        w.registerFunction('alerted::page', async (alert: Any) => {
          paged.push(alert);
          return null;
        });
        await functionRegistered(t.engine, 'alerted::page');
        expect(lines.some((l) => String(l.msg).includes('alert "typo" names metric "no.such.metric"'))).toBe(true);

        const before = await call(w, 'engine::alerts::evaluate', {});
        expect(before.firing).toEqual([]);
        expect(before.evaluated).toBe(4);
        await failure(w, 'al::fail', {});
        await failure(w, 'al::fail', {});
        await failure(w, 'al::fail', {});
        const evaluated = await call(w, 'engine::alerts::evaluate', {});
        expect(evaluated.firing).toEqual(['errors', 'paged', 'hooked']);

        const listed = await call(w, 'engine::alerts::list', {});
        const byName = (name: string) => listed.alerts.find((a: Any) => a.name === name);
        expect(byName('errors')).toMatchObject({
          metric: 'invocations.error',
          operator: 'greaterthanorequal',
          threshold: 2,
          window_seconds: 60,
          state: 'firing',
          firing: true,
          value: 3,
          trigger_count: 1,
          action: { type: 'log' },
        });
        // A gauge's value is its average over the window: samples from before the worker connected count.
        expect(byName('crowd')).toMatchObject({
          state: 'ok',
          firing: false,
          value: expect.any(Number),
          window_seconds: 60,
          cooldown_seconds: 60,
        });
        expect(byName('crowd').value).toBeGreaterThan(0);
        expect(byName('crowd').value).toBeLessThanOrEqual(1);
        expect(byName('typo')).toMatchObject({ state: 'unknown_metric', firing: false });
        const warned = lines.filter((l) => String(l.msg).startsWith('alert "errors" firing'));
        expect(warned).toHaveLength(1);
        expect(warned[0]).toMatchObject({ level: 40, alert: 'errors', value: 3 });
        const alert = await waitFor(() => paged[0], 'the alert function called');
        expect(alert).toMatchObject({ name: 'paged', state: 'firing', value: 3, triggered_at_ms: expect.any(Number) });
        const posted = await waitFor(() => hooked[0], 'the alert webhook called');
        expect(posted).toMatchObject({
          path: '/hooks/secret-token',
          type: 'application/json',
          alert: { name: 'hooked', operator: 'equal', value: 3, firing: true },
        });
        expect(posted.alert.action).toEqual({ type: 'webhook', url: new URL(hookUrl).origin });
        expect(JSON.stringify(byName('hooked'))).not.toContain('secret-token');

        expect((await call(w, 'engine::health::check', {})).components.alerts).toEqual({
          status: 'healthy',
          rules: 5,
          firing: 3,
        });
        // Within the cooldown it stays firing without another warning.
        await call(w, 'engine::alerts::evaluate', {});
        expect(lines.filter((l) => String(l.msg).startsWith('alert "errors" firing'))).toHaveLength(1);
        expect((await call(w, 'engine::alerts::list', {})).alerts[0]).toMatchObject({
          state: 'firing',
          trigger_count: 1,
        });
        expect(hooked).toHaveLength(1);
      } finally {
        await t.close();
        await new Promise<void>((resolve) => hook.close(() => resolve()));
      }
    });
  });

  // Last in the file: an SDK with OTel on installs process-wide OTel globals.
  test('engine::workers::info: latest_metrics holds what the worker SDK reports in its iii.worker.* gauges', async () => {
    const t = await startWith({});
    try {
      const w = t.worker('reporting', {
        otel: { enabled: true, metricsExportIntervalMs: 200 },
        enableMetricsReporting: true,
      });
      w.registerFunction('rep::fn', async () => null);
      await functionRegistered(t.engine, 'rep::fn');
      const reader = t.worker('reader');
      const info = await waitFor(
        async () => {
          const out = await call(reader, 'engine::workers::info', { name: 'reporting' });
          return out.worker.latest_metrics?.memory_rss !== undefined && out;
        },
        'the worker metrics of reporting',
        15_000,
      );
      expect(info.worker.latest_metrics).toMatchObject({
        memory_rss: expect.any(Number),
        memory_heap_used: expect.any(Number),
        timestamp_ms: expect.any(Number),
        runtime: 'node',
      });
      expect(info.worker.latest_metrics.memory_rss).toBeGreaterThan(0);
      const byId = await call(reader, 'engine::workers::info', { worker_id: info.worker.id });
      expect(byId.worker.latest_metrics.memory_rss).toEqual(expect.any(Number));
      expect((await call(reader, 'engine::workers::info', { name: 'reader' })).worker.latest_metrics).toBeUndefined();
    } finally {
      await t.close();
      await sleep(100); // the SDK logs when its /otel socket has closed: let that happen inside the test
    }
  });
});
