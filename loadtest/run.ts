/**
 * `npm run loadtest` / `npm run loadtest:smoke`: a private redis-server, three engine nodes on
 * loopback, the load-test workers, then real k6 for each script; results in
 * loadtest/results/summary.md (smoke: loadtest/results/smoke/summary.md). Every process started
 * here is stopped here, on success, on failure and on Ctrl-C.
 *
 *   node dist/loadtest/run.js [--smoke] [script ...]     (scripts: smoke, http-trigger, ...)
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Progress } from '../bench/lib/progress';
import { startRedis, type TestRedis } from '../test/support/redis';
import { ROOT, startEngineNode, startWorker, track, type Child, type EngineNode } from './cluster';
import { derivedChecks, renderMarkdown, thresholdResults, type K6Summary, type ScriptOutcome } from './summary';

export const SCRIPTS = ['smoke', 'http-trigger', 'ws-workers', 'stream-fanout', 'queue'] as const;

export type Profile = 'smoke' | 'full';

export interface LoadtestOptions {
  profile: Profile;
  /** Default: all of SCRIPTS, in that order. */
  scripts?: readonly string[];
  /** Engine nodes to start (default 3). */
  nodes?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface LoadtestReport {
  outcomes: ScriptOutcome[];
  summaryPath: string;
  /** Every k6 exited 0 and every check across metrics held. */
  passed: boolean;
}

const INSTALL_HINT =
  'k6 is not installed: run `bash scripts/install-k6.sh` (builds the pinned k6 into .cache/bin with `go install`), or set K6_BIN to a k6 binary';

/** K6_BIN, else .cache/bin/k6 (scripts/install-k6.sh), else k6 on the PATH. */
export function findK6(): string {
  const candidates = [process.env['K6_BIN'], path.join(ROOT, '.cache/bin/k6'), 'k6'].filter((c): c is string => !!c);
  for (const bin of candidates) {
    const probe = spawnSync(bin, ['version'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) return bin;
  }
  throw new Error(INSTALL_HINT);
}

export async function runLoadtest(options: LoadtestOptions): Promise<LoadtestReport> {
  const progress = new Progress('loadtest');
  const log = options.log ?? ((line: string) => progress.log(line));
  const scripts = options.scripts ?? SCRIPTS;
  for (const script of scripts) {
    if (!fs.existsSync(path.join(ROOT, 'loadtest', `${script}.js`)))
      throw new Error(`no loadtest/${script}.js (known: ${SCRIPTS.join(', ')})`);
  }
  const k6 = findK6();
  const k6Version = spawnSync(k6, ['version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] ?? 'k6';
  ensureBuilt(log);

  const resultsDir = path.join(ROOT, 'loadtest/results', options.profile === 'smoke' ? 'smoke' : '');
  fs.mkdirSync(resultsDir, { recursive: true });
  const children: Child[] = [];
  let redis: TestRedis | undefined;
  let stopping = false;
  const interrupted = () => void cleanup().then(() => process.exit(130));
  const cleanup = async () => {
    stopping = true;
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    // Workers first (their sockets close cleanly), then the nodes (they drain), then Redis.
    await Promise.all(children.filter((c) => !isNode(c)).map((c) => c.stop()));
    await Promise.all(children.filter(isNode).map((c) => c.stop()));
    children.length = 0;
    await redis?.stop();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    redis = await startRedis();
    const keyPrefix = `lt${randomUUID().slice(0, 8)}:`;
    const nodeCount = options.nodes ?? 3;
    const nodes: EngineNode[] = [];
    for (let i = 1; i <= nodeCount; i++) {
      const node = await startEngineNode(`lt-node-${i}`, redis.url, keyPrefix);
      nodes.push(node);
      children.push(node);
    }
    log(`loadtest: ${nodeCount} nodes ready on ${redis.url} (${nodes.map((n) => n.wsUrl).join(', ')})`);
    const wsUrls = nodes.map((n) => n.wsUrl);
    for (const file of ['http-handler.js', 'queue-handler.js']) children.push(await startWorker(file, wsUrls));
    log('loadtest: workers ready');

    const env: Record<string, string> = {
      LT_PROFILE: options.profile,
      LT_RUN: `run-${randomUUID().slice(0, 8)}`,
      III_WS_URLS: wsUrls.join(','),
      III_HTTP_URLS: nodes.map((n) => n.httpUrl).join(','),
      III_STREAM_URLS: nodes.map((n) => n.streamUrl).join(','),
      III_METRICS_URLS: nodes.map((n) => n.metricsUrl).join(','),
    };
    const outcomes: ScriptOutcome[] = [];
    for (const [i, script] of scripts.entries()) {
      progress.update(`k6 ${script}`, { index: i + 1, total: scripts.length });
      if (stopping) throw new Error('interrupted');
      const outcome = await runK6(k6, script, env, resultsDir, children);
      log(
        `loadtest: ${script}: k6 exit ${outcome.exitCode}, ${outcome.thresholds.filter((t) => t.passed).length}/${outcome.thresholds.length} thresholds passed (${outcome.seconds.toFixed(1)} s)`,
      );
      for (const check of outcome.derived)
        log(`loadtest: ${script}: ${check.passed ? 'ok' : 'FAILED'}: ${check.name} ${check.value}`);
      outcomes.push(outcome);
    }
    const summaryPath = path.join(resultsDir, 'summary.md');
    fs.writeFileSync(
      summaryPath,
      renderMarkdown(outcomes, {
        profile: options.profile,
        nodes: nodeCount,
        date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
        k6: k6Version,
      }),
    );
    log(`loadtest: wrote ${path.relative(ROOT, summaryPath)}`);
    const passed = outcomes.every((o) => o.exitCode === 0 && o.derived.every((d) => d.passed));
    return { outcomes, summaryPath, passed };
  } finally {
    progress.stop();
    await cleanup();
  }
}

function isNode(child: Child): child is EngineNode {
  return 'wsUrl' in child;
}

/** Builds the engine unless dist/ is already there (`npm run loadtest` builds before). */
function ensureBuilt(log: (line: string) => void): void {
  if (fs.existsSync(path.join(ROOT, 'dist/src/cli.js'))) return;
  log('loadtest: building (tsc -p tsconfig.build.json)');
  const build = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (build.status !== 0) throw new Error('the build failed (tsc -p tsconfig.build.json)');
}

/** Runs one script; the k6 process sits in `children` while it runs, so an interrupt stops it too. */
async function runK6(
  k6: string,
  script: string,
  env: Record<string, string>,
  resultsDir: string,
  children: Child[],
): Promise<ScriptOutcome> {
  const exportPath = path.join(resultsDir, `${script}.json`);
  fs.rmSync(exportPath, { force: true });
  const args = [
    'run',
    '--no-color',
    '--quiet',
    '--summary-export',
    exportPath,
    '--summary-trend-stats',
    'avg,min,med,max,p(90),p(95),p(99)',
  ];
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  args.push(path.join(ROOT, 'loadtest', `${script}.js`));
  const logFile = fs.openSync(path.join(resultsDir, `${script}.log`), 'w');
  const started = Date.now();
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(k6, args, {
      cwd: ROOT,
      stdio: ['ignore', logFile, logFile],
      env: { ...process.env, K6_NO_USAGE_REPORT: 'true' },
    });
    const tracked = track(`k6 ${script}`, child);
    children.push(tracked);
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  }).finally(() => {
    fs.closeSync(logFile);
    const index = children.findIndex((c) => c.name === `k6 ${script}`);
    if (index >= 0) children.splice(index, 1);
  });
  const summary = fs.existsSync(exportPath)
    ? (JSON.parse(fs.readFileSync(exportPath, 'utf8')) as K6Summary)
    : undefined;
  return {
    script,
    exitCode,
    seconds: (Date.now() - started) / 1000,
    summary,
    thresholds: summary ? thresholdResults(summary) : [],
    derived: summary ? derivedChecks(script, summary) : [],
  };
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const profile: Profile = argv.includes('--smoke') ? 'smoke' : 'full';
  const scripts = argv.filter((a) => !a.startsWith('--'));
  runLoadtest({ profile, scripts: scripts.length > 0 ? scripts : undefined }).then(
    (report) => {
      process.stdout.write(fs.readFileSync(report.summaryPath, 'utf8'));
      process.exitCode = report.passed ? 0 : 1;
    },
    (err: unknown) => {
      process.stderr.write(`loadtest: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
