import {
  EngineMetrics,
  MAX_FUNCTION_SERIES,
  MAX_OUTCOME_SERIES,
  UNKNOWN_FUNCTION,
} from '../../src/observability/metrics';

/** Series of `iii_invocations_total`, as `function|outcome` strings. */
async function invocationSeries(metrics: EngineMetrics): Promise<string[]> {
  const metric = await metrics.invocations.get();
  return metric.values.map((v) => `${String(v.labels['function'])}|${String(v.labels['outcome'])}`);
}

describe('invocation metrics stay bounded whatever callers and workers send', () => {
  test('calls to ids nobody serves count under one label, not one series per made-up id', async () => {
    const metrics = new EngineMetrics(() => 0, { node: 'test' });
    for (let i = 0; i < 1000; i++) metrics.observe(`made-up::${i}`, 'function_not_found', performance.now());
    expect(await invocationSeries(metrics)).toEqual(expect.arrayContaining([`${UNKNOWN_FUNCTION}|function_not_found`]));
    expect((await invocationSeries(metrics)).filter((s) => s.startsWith('made-up::'))).toEqual([]);
  });

  test(`past ${MAX_FUNCTION_SERIES} function ids, new ids count as (other); past ${MAX_OUTCOME_SERIES} error codes, new codes as other`, async () => {
    const metrics = new EngineMetrics(() => 0, { node: 'test' });
    for (let i = 0; i < MAX_FUNCTION_SERIES + 500; i++) metrics.observe(`fn::${i}`, 'ok', performance.now());
    for (let i = 0; i < MAX_OUTCOME_SERIES + 500; i++) metrics.observe('fn::0', `code-${i}`, performance.now());
    const series = await invocationSeries(metrics);
    expect(series).toContain('(other)|ok');
    expect(series).not.toContain(`fn::${MAX_FUNCTION_SERIES + 1}|ok`);
    expect(series).toContain('fn::0|other');
    expect(series.length).toBeLessThanOrEqual(MAX_FUNCTION_SERIES + 1 + MAX_OUTCOME_SERIES + 1);
    const other = (await metrics.invocations.get()).values.find(
      (v) => v.labels['function'] === '(other)' && v.labels['outcome'] === 'ok',
    );
    expect(other?.value).toBe(500);
  });
});
