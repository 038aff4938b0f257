/**
 * Summarizes a V8 .cpuprofile (from `BENCH_PROFILE=1 npm run bench`, written to
 * bench/results/profiles/): top functions by self time, and total (inclusive) time of the
 * project's own functions (dist/src/...).
 *
 *   node dist/bench/tools/cpuprofile-top.js bench/results/profiles/<file>.cpuprofile [topN]
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../lib/paths';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function label(frame: CallFrame): string {
  let url = frame.url.replace(/^file:\/\//, '');
  if (url.startsWith(repoRoot)) url = path.relative(repoRoot, url);
  url = url.replace(/^.*node_modules\//, 'node_modules/');
  const where = url ? ` ${url}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where}`;
}

function main(): void {
  const file = process.argv[2];
  const topN = Number(process.argv[3] ?? 30);
  if (!file) throw new Error('usage: cpuprofile-top <file.cpuprofile> [topN]');
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs.entries()]
    .filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)')
    .reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    // Inclusive: count each distinct label once per stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(
    `profile ${path.basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages are of busy time)\n`,
  );
  console.log(`Top ${topN} by self time:`);
  for (const [k, us] of [...self]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN))
    console.log(`  ${pct(us)}  ${k}`);
  console.log(`\nProject code (dist/src) by inclusive time:`);
  for (const [k, us] of [...inclusive]
    .filter(([k]) => k.includes('dist/src/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN))
    console.log(`  ${pct(us)}  ${k}`);
}

main();
