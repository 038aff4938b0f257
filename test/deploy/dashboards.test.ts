import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import yaml from 'js-yaml';
import { call, failure, type Any } from '../support/calls';
import { waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * The Grafana dashboard and the Prometheus alert rules that ship (helm/iii-cluster/files/, the
 * one copy: the chart reads them with .Files.Get, the docs point there): the dashboard's shape,
 * `promtool check rules` on the rules, `helm template` rendering both into the ConfigMap and the
 * PrometheusRule, and every metric name their PromQL uses found in the /metrics of two real
 * engine processes after calls, a cross-node call, a queue job, a dead letter and a Redis outage.
 */

const ROOT = path.resolve(__dirname, '../..');
const CHART = path.join(ROOT, 'helm/iii-cluster');
const DASHBOARD_FILE = path.join(CHART, 'files/grafana-dashboard.json');
const RULES_FILE = path.join(CHART, 'files/alerts.yaml');

/** Series Prometheus makes itself for each target (never in a scrape). */
const PROMETHEUS_SYNTHETIC = new Set(['up']);

interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string | { query: string } }> };
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}

const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const rules = yaml.load(fs.readFileSync(RULES_FILE, 'utf8')) as RuleFile;

/** What a binary prints when it cannot be found, with the way to get it. */
function findTool(envVar: string, cached: string, name: string, hint: string): string {
  for (const bin of [process.env[envVar], path.join(ROOT, '.cache/bin', cached), name]) {
    if (bin !== undefined && bin !== '' && !spawnSync(bin, ['--version']).error) return bin;
  }
  throw new Error(hint);
}

const PROMTOOL_HINT =
  'promtool is not installed. Build the pinned version with `bash scripts/install-promtool.sh` ' +
  '(needs Go; writes .cache/bin/promtool), or put promtool on the PATH, or set PROMTOOL_BIN to its path.';
const HELM_HINT =
  'helm is not installed. Build the pinned version with `bash scripts/install-helm.sh` ' +
  '(needs Go; writes .cache/bin/helm), or put helm 3 on the PATH, or set HELM_BIN to its path.';

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: label matchers, ranges, strings and the label
 * lists of by/without/on/ignoring/group_left/group_right are dropped, then every identifier not
 * called as a function (nor a keyword) is a metric. Grafana's `label_values(metric, label)`
 * reads its metric.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)/g, ' $1 ')
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (call === undefined && !KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

function dashboardExprs(): string[] {
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    exprs.push(typeof variable.query === 'string' ? variable.query : variable.query.query);
  }
  return exprs;
}

function ruleExprs(): string[] {
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

test('metricNames reads the metrics of an expression, not its functions, labels or keywords', () => {
  expect(metricNames('up == 0 and on (job, instance) max_over_time(iii_connected_workers[1h])')).toEqual([
    'up',
    'iii_connected_workers',
  ]);
  expect(
    metricNames(
      'histogram_quantile(0.99, sum by (le, function) (rate(x_bucket{node=~"$node",a="b{c}"}[$__rate_interval]))) / y offset 5m',
    ),
  ).toEqual(['x_bucket', 'y']);
  expect(metricNames('label_values(iii_connected_workers, node)')).toEqual(['iii_connected_workers']);
});

describe('the dashboard JSON', () => {
  test('has a uid, a data source variable, and panels whose queries all use it', () => {
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.title).toBe('iii-cluster');
    const datasource = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(datasource).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(12);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of graphs) {
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.title).not.toBe('');
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets!) {
        expect(target.expr.trim()).not.toBe('');
        expect(target.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(metricNames(target.expr).length).toBeGreaterThan(0);
      }
    }
  });

  test('covers calls, errors, latency, workers, queues, dead letters, cross-node calls, Redis and drain state', () => {
    const used = new Set(dashboardExprs().flatMap(metricNames));
    for (const name of [
      'iii_invocations_total',
      'iii_invocation_duration_seconds_bucket',
      'iii_connected_workers',
      'iii_queue_depth',
      'iii_queue_dlq_size',
      'iii_cross_node_calls_total',
      'iii_redis_errors_total',
      'iii_redis_up',
      'iii_node_draining',
    ])
      expect(used).toContain(name);
  });
});

describe('the alert rules', () => {
  test('alert on node down, dead letters growing, error rate, p99 over budget and Redis unreachable', () => {
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(alerts.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'IIIClusterNodeDown',
        'IIIClusterDeadLettersGrowing',
        'IIIClusterErrorRateHigh',
        'IIIClusterLatencyP99OverBudget',
        'IIIClusterRedisUnreachable',
      ]),
    );
    for (const rule of alerts) {
      expect(rule.labels?.['severity']).toMatch(/^(warning|critical)$/);
      expect(rule.annotations?.['summary']).toBeTruthy();
    }
  });

  test('pass promtool check rules', () => {
    const promtool = findTool('PROMTOOL_BIN', 'promtool', 'promtool', PROMTOOL_HINT);
    const run = spawnSync(promtool, ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toContain(`SUCCESS: ${ruleExprs().length} rules found`);
    expect(run.status).toBe(0);
  });
});

describe('the Helm chart', () => {
  let helm: string;
  let tmpDir: string;

  beforeAll(() => {
    helm = findTool('HELM_BIN', 'helm', 'helm', HELM_HINT);
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-helm-dash-'));
  });
  afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

  function render(set: string[]): Array<Record<string, Any>> {
    const args = ['template', 'iii', CHART, '--namespace', 'iii', '--set', 'redis.url=redis://redis:6379'];
    for (const s of set) args.push('--set', s);
    const run = spawnSync(helm, args, {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: path.join(tmpDir, 'cache'),
        HELM_CONFIG_HOME: path.join(tmpDir, 'config'),
        HELM_DATA_HOME: path.join(tmpDir, 'data'),
      },
    });
    if (run.status !== 0) throw new Error(`helm template failed (${run.status}): ${run.stderr}`);
    return yaml.loadAll(run.stdout).filter((d): d is Record<string, Any> => d !== null && typeof d === 'object');
  }

  test('renders neither by default', () => {
    const kinds = render([]).map((o) => `${o['kind']}/${o['metadata'].name}`);
    expect(kinds).not.toContain('PrometheusRule/iii-iii-cluster');
    expect(kinds).not.toContain('ConfigMap/iii-iii-cluster-dashboard');
  });

  test('grafana.dashboards.enabled: a ConfigMap with the sidecar label holding the dashboard as it is in files/', () => {
    const objects = render(['grafana.dashboards.enabled=true']);
    const map = objects.find((o) => o['kind'] === 'ConfigMap' && o['metadata'].name === 'iii-iii-cluster-dashboard')!;
    expect(map['metadata'].namespace).toBe('iii');
    expect(map['metadata'].labels).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/instance': 'iii' });
    expect(JSON.parse(map['data']['iii-cluster.json'])).toEqual(dashboard);
    expect(objects.some((o) => o['kind'] === 'PrometheusRule')).toBe(false);

    const custom = render([
      'grafana.dashboards.enabled=true',
      'grafana.dashboards.label=dashboards',
      'grafana.dashboards.labelValue=iii',
      'grafana.dashboards.namespace=monitoring',
      'grafana.dashboards.annotations.grafana_folder=Engines',
    ]).find((o) => o['metadata'].name === 'iii-iii-cluster-dashboard')!;
    expect(custom['metadata']).toMatchObject({
      namespace: 'monitoring',
      labels: { dashboards: 'iii' },
      annotations: { grafana_folder: 'Engines' },
    });
    expect(custom['metadata'].labels).not.toHaveProperty('grafana_dashboard');
  });

  test('prometheusRule.enabled: a monitoring.coreos.com/v1 PrometheusRule whose spec is the rules file', () => {
    const objects = render(['prometheusRule.enabled=true', 'prometheusRule.labels.release=kube-prometheus-stack']);
    const rule = objects.find((o) => o['kind'] === 'PrometheusRule')!;
    expect(rule['apiVersion']).toBe('monitoring.coreos.com/v1');
    expect(rule['metadata'].labels).toMatchObject({ release: 'kube-prometheus-stack' });
    expect(rule['spec']).toEqual(rules);
    expect(objects.some((o) => o['kind'] === 'ConfigMap' && o['metadata'].name.endsWith('-dashboard'))).toBe(false);
  });

  test('the schema refuses an unknown key', () => {
    const run = spawnSync(
      helm,
      ['template', 'iii', CHART, '--set', 'redis.url=redis://r:6379', '--set', 'prometheusRule.enable=true'],
      {
        encoding: 'utf8',
        env: { ...process.env, HELM_CACHE_HOME: path.join(tmpDir, 'cache'), HELM_CONFIG_HOME: path.join(tmpDir, 'c') },
      },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/enable/);
  });
});

describe('every metric they use, in a real scrape', () => {
  const TOKEN = 'dash-token';
  const CONFIG = `
workers:
  - name: iii-worker-manager
    config:
      host: 127.0.0.1
      port: 49134
  - name: iii-queue
    config:
      queue_configs:
        dead: { max_retries: 1, backoff_ms: 10 }
`;
  let redis: TestRedis;
  let dir: string;
  const nodes: NodeProcess[] = [];
  const workers: IIIClient[] = [];

  function connect(node: NodeProcess, name: string): IIIClient {
    const worker = registerWorker(node.url, {
      workerName: name,
      enableMetricsReporting: false,
      otel: { enabled: false },
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    workers.push(worker);
    return worker;
  }

  async function scrape(node: NodeProcess): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  }

  /** The sample names of a scrape (histograms' _bucket/_sum/_count, labelled series that have a value). */
  function sampleNames(text: string): Set<string> {
    const names = new Set<string>();
    for (const line of text.split('\n')) {
      const name = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line)?.[1];
      if (name !== undefined) names.add(name);
    }
    return names;
  }

  beforeAll(async () => {
    redis = await startRedis();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-dash-'));
    fs.writeFileSync(path.join(dir, 'config.yaml'), CONFIG);
    for (const nodeId of ['dash-a', 'dash-b']) {
      nodes.push(
        await startNodeProcess({
          nodeId,
          redisUrl: redis.url,
          keyPrefix: 'dash:',
          cwd: dir,
          args: ['--config', 'config.yaml'],
          env: { III_WORKER_TOKEN: TOKEN },
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const worker of workers) await worker.shutdown().catch(() => undefined);
    for (const node of nodes) await node.kill('SIGKILL');
    await redis?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('after calls, a cross-node call, a queue job, a dead letter and a Redis outage', async () => {
    const [a, b] = nodes;
    const server = connect(a, 'dash-server');
    server.registerFunction('dash::echo', async (data: unknown) => ({ echoed: data }));
    server.registerFunction('dash::fail', async () => {
      throw new Error('always fails');
    });
    const caller = connect(b, 'dash-caller');
    await waitFor(
      async () => {
        const listed: Any = await call(caller, 'engine::functions::list', { prefix: 'dash::' });
        return listed.functions.length === 2;
      },
      'node b sees the functions of node a',
      15_000,
    );
    for (let i = 0; i < 5; i++) expect(await call(caller, 'dash::echo', { i })).toMatchObject({ echoed: { i } });
    await failure(caller, 'dash::fail', {});
    await caller.trigger({
      function_id: 'dash::echo',
      payload: { queued: true },
      action: TriggerAction.Enqueue({ queue: 'dead' }),
    });
    await caller.trigger({
      function_id: 'dash::fail',
      payload: { doomed: true },
      action: TriggerAction.Enqueue({ queue: 'dead' }),
    });
    await waitFor(
      async () => /iii_queue_dlq_size\{[^}]*queue="dead"[^}]*\} 1\b/.test(await scrape(a)),
      'the dead letter counted',
      15_000,
    );

    await waitFor(
      async () => /iii_cluster_nodes\{[^}]*\} 2\b/.test(await scrape(a)),
      'node a counting both nodes',
      15_000,
    );
    const scraped = new Set<string>();
    const texts = [await scrape(a), await scrape(b)];
    expect(texts[1]).toMatch(/iii_cross_node_calls_total\{[^}]*direction="out"[^}]*peer="dash-a"[^}]*\} [1-9]/);
    expect(texts[0]).toMatch(/iii_cross_node_calls_total\{[^}]*direction="in"[^}]*peer="dash-b"[^}]*\} [1-9]/);
    expect(texts[0]).toMatch(/iii_redis_up\{[^}]*\} 1\b/);
    expect(texts[0]).toMatch(/iii_node_draining\{[^}]*\} 0\b/);

    // Redis goes away: the nodes count their connection errors and say Redis is down.
    await redis.stop();
    await waitFor(
      async () => {
        const text = await scrape(a);
        if (!/iii_redis_errors_total\{[^}]*\} [1-9]/.test(text) || !/iii_redis_up\{[^}]*\} 0\b/.test(text))
          return false;
        texts.push(text);
        return true;
      },
      'Redis errors counted',
      15_000,
    );
    for (const text of texts) for (const name of sampleNames(text)) scraped.add(name);

    const used = new Set([...dashboardExprs(), ...ruleExprs()].flatMap(metricNames));
    expect(used).toContain('iii_invocation_duration_seconds_bucket');
    const missing = [...used].filter((name) => !scraped.has(name) && !PROMETHEUS_SYNTHETIC.has(name));
    expect(missing).toEqual([]);
  }, 90_000);

  test('iii_node_draining is 1 while a stopping node waits for its calls in flight', async () => {
    const node = await startNodeProcess({
      nodeId: 'dash-drain',
      cwd: dir,
      args: ['--config', 'config.yaml'],
      env: { III_WORKER_TOKEN: TOKEN, III_DRAIN_GRACE_MS: '20000' },
    });
    nodes.push(node);
    expect(await scrape(node)).toMatch(/iii_node_draining\{[^}]*\} 0\b/);
    const worker = connect(node, 'dash-slow');
    let finish: () => void = () => undefined;
    worker.registerFunction(
      'dash::slow',
      () => new Promise<{ done: true }>((resolve) => (finish = () => resolve({ done: true }))),
    );
    await waitFor(
      async () => ((await call(worker, 'engine::functions::list', { prefix: 'dash::' })) as Any).functions.length === 1,
      'the slow function registered',
      10_000,
    );
    const slow = call(worker, 'dash::slow', {});
    await waitFor(async () => /iii_pending_calls\{[^}]*\} 1\b/.test(await scrape(node)), 'the call in flight', 10_000);
    const stopped = node.kill('SIGTERM');
    await waitFor(
      async () => /iii_node_draining\{[^}]*\} 1\b/.test(await scrape(node).catch(() => '')),
      'the node draining',
      10_000,
    );
    finish();
    expect(await slow).toEqual({ done: true });
    await stopped;
  }, 60_000);
});
