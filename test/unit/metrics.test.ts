import {
  EngineMetrics,
  MAX_CROSS_NODE_SERIES,
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

describe('cross-node call counts', () => {
  test(`count per direction and peer; past ${MAX_CROSS_NODE_SERIES} series, new peers count as (other)`, async () => {
    const metrics = new EngineMetrics(() => 0, { node: 'test' });
    metrics.countCrossNode('out', 'node-b');
    metrics.countCrossNode('out', 'node-b');
    metrics.countCrossNode('in', 'node-b');
    // node-b's two series, then pods 0-509 fill the other 510; the last 102 pods share (other).
    for (let i = 0; i < MAX_CROSS_NODE_SERIES + 100; i++) metrics.countCrossNode('out', `pod-${i}`);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/iii_cross_node_calls_total\{[^}]*direction="out"[^}]*peer="node-b"[^}]*\} 2\n/);
    expect(text).toMatch(/iii_cross_node_calls_total\{[^}]*direction="in"[^}]*peer="node-b"[^}]*\} 1\n/);
    expect(text).toMatch(/iii_cross_node_calls_total\{[^}]*direction="out"[^}]*peer="\(other\)"[^}]*\} 102\n/);
    expect(text.match(/^iii_cross_node_calls_total\{/gm)).toHaveLength(MAX_CROSS_NODE_SERIES + 1);
  });
});

describe('node state gauges (watchNode), read when scraped', () => {
  test('a single node reports iii_node_draining only; a cluster node also iii_redis_up and iii_cluster_nodes', async () => {
    const single = new EngineMetrics(() => 0, { node: 'solo' });
    let draining = false;
    single.watchNode(() => ({ draining }));
    expect(await single.registry.metrics()).toMatch(/^iii_node_draining\{node="solo"\} 0$/m);
    draining = true;
    const text = await single.registry.metrics();
    expect(text).toMatch(/^iii_node_draining\{node="solo"\} 1$/m);
    expect(text).not.toContain('iii_redis_up');
    expect(text).not.toContain('iii_cluster_nodes');

    const member = new EngineMetrics(() => 0, { node: 'm1' });
    let redisUp = true;
    member.watchNode(() => ({ draining: false, redisUp, nodes: 3 }));
    expect(await member.registry.metrics()).toMatch(/^iii_redis_up\{node="m1"\} 1$/m);
    redisUp = false;
    const down = await member.registry.metrics();
    expect(down).toMatch(/^iii_redis_up\{node="m1"\} 0$/m);
    expect(down).toMatch(/^iii_cluster_nodes\{node="m1"\} 3$/m);
  });
});
