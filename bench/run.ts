/**
 * `npm run bench`: builds, then runs every benchmark suite listed below (or the ones named in
 * BENCH_SUITES, comma-separated), prints the markdown report to stdout (progress goes to
 * stderr) and writes it to bench/results/latest.md. Target misses are reported, never fatal.
 *
 * Adding a benchmark: create bench/<name>/suite.ts exporting a `Suite`, and list it here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { clusterCostSuite } from './cluster/cost';
import { clusterSuite } from './cluster/suite';
import { httpSuite } from './http/suite';
import { invokeSuite } from './invoke/suite';
import { killAllChildren } from './lib/child';
import { envList } from './lib/env';
import { machineInfo, machineLine } from './lib/machine';
import { resultsDir } from './lib/paths';
import { Progress } from './lib/progress';
import type { Suite } from './lib/suite';
import { queueSuite } from './queue/suite';

const suites: Suite[] = [invokeSuite, httpSuite, queueSuite, clusterSuite, clusterCostSuite];

async function main(): Promise<void> {
  const wanted = envList(
    'BENCH_SUITES',
    suites.map((s) => s.name),
  );
  const unknown = wanted.filter((name) => !suites.some((s) => s.name === name));
  if (unknown.length)
    throw new Error(`unknown suite(s) ${unknown.join(', ')}; available: ${suites.map((s) => s.name).join(', ')}`);
  const selected = suites.filter((s) => wanted.includes(s.name));

  const progress = new Progress('bench');
  const log = (line: string) => progress.log(line);
  const sections: string[] = [];
  const checks: { suite: string; name: string; pass: boolean }[] = [];
  for (const [i, suite] of selected.entries()) {
    progress.update(`suite ${suite.name}`, { index: i + 1, total: selected.length });
    log(`== ${suite.title} (${suite.name})`);
    const result = await suite.run(log);
    sections.push(result.markdown);
    checks.push(...result.checks.map((c) => ({ suite: suite.name, ...c })));
  }

  progress.stop();
  const report = [
    '## Benchmark results',
    '',
    `Machine: ${machineLine(machineInfo())}  `,
    `Date: ${new Date().toISOString()}`,
    '',
    sections.join('\n\n'),
    '',
    `Targets: ${checks.map((c) => `${c.name}: ${c.pass ? 'PASS' : 'MISS'}`).join('; ') || 'none'}`,
    '',
  ].join('\n');

  process.stdout.write(report);
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, 'latest.md');
  fs.writeFileSync(file, report);
  log(`wrote ${path.relative(process.cwd(), file)}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAllChildren();
    process.exit(1);
  },
);
