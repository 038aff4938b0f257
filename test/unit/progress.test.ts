import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { clock, Progress, type ProgressStream } from '../../bench/lib/progress';

/**
 * The status line of bench, loadtest and chaos runs (bench/lib/progress.ts): redrawn in place
 * with `\r` on a terminal, absent when stderr is not one; logged lines pass through either way.
 */

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

const CLEAR = '\x1b[K';

test('on a TTY: one line redrawn with \\r, the place in the run, elapsed and time left', () => {
  let now = 1_000_000;
  const stream = new FakeStream(true);
  const progress = new Progress('chaos', { stream, now: () => now, intervalMs: 60_000 });
  expect(progress.enabled).toBe(true);
  progress.update('fault', { index: 3, total: 10, endsAtMs: now + 65_000 });
  expect(stream.chunks).toEqual([`\rchaos: fault 3/10 · 0:00 elapsed · 1:05 left${CLEAR}`]);
  now += 12_000;
  progress.update('fault', { index: 4, total: 10, endsAtMs: 1_000_000 + 65_000 });
  expect(stream.chunks[1]).toBe(`\rchaos: fault 4/10 · 0:12 elapsed · 0:53 left${CLEAR}`);
  expect(stream.text).not.toContain('\n');
  progress.stop();
  expect(stream.chunks.at(-1)).toBe(`\r${CLEAR}`);
});

test('on a TTY: a logged line clears the status, stays, and the status is drawn again below it', () => {
  const stream = new FakeStream(true);
  const progress = new Progress('bench', { stream, now: () => 0, intervalMs: 60_000 });
  progress.update('suite invoke', { index: 1, total: 5 });
  stream.chunks = [];
  progress.log('== Invoke round trips (invoke)');
  expect(stream.chunks).toEqual([
    `\r${CLEAR}`,
    '== Invoke round trips (invoke)\n',
    `\rbench: suite invoke 1/5 · 0:00 elapsed${CLEAR}`,
  ]);
  progress.stop();
});

test('on a TTY: the clock ticks by itself between updates', async () => {
  const stream = new FakeStream(true);
  const progress = new Progress('loadtest', { stream, intervalMs: 20 });
  progress.update('k6 smoke', { index: 1, total: 5 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  progress.stop();
  const draws = stream.chunks.filter((c) => c.startsWith('\rloadtest: k6 smoke 1/5'));
  expect(draws.length).toBeGreaterThanOrEqual(3);
  const after = stream.chunks.length;
  await new Promise((resolve) => setTimeout(resolve, 60));
  expect(stream.chunks.length).toBe(after);
});

test('on a TTY: a line longer than the terminal is cut to fit', () => {
  const stream = new FakeStream(true, 30);
  const progress = new Progress('bench', { stream, now: () => 0, intervalMs: 60_000 });
  progress.update('suite a-very-long-suite-name-indeed', { index: 1, total: 2 });
  progress.stop();
  const line = stream.chunks[0].slice(1, -CLEAR.length);
  expect(line).toHaveLength(29);
  expect(line.endsWith('…')).toBe(true);
});

test('not a TTY (CI, a pipe): no status line at all, logged lines unchanged', async () => {
  const stream = new FakeStream(false);
  const progress = new Progress('chaos', { stream, intervalMs: 10 });
  expect(progress.enabled).toBe(false);
  progress.update('fault', { index: 1, total: 3, endsAtMs: Date.now() + 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  progress.log('loadtest: workers ready');
  progress.update('settling');
  progress.stop();
  expect(stream.text).toBe('loadtest: workers ready\n');
});

test('clock: m:ss, h:mm:ss past an hour', () => {
  expect(clock(0)).toBe('0:00');
  expect(clock(59_400)).toBe('0:59');
  expect(clock(61_000)).toBe('1:01');
  expect(clock(3_725_000)).toBe('1:02:05');
});

test('a real process whose stderr is a pipe prints no status line and exits on time', () => {
  const source = fs.readFileSync(path.resolve(__dirname, '../../bench/lib/progress.ts'), 'utf8');
  const compiled = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS } }).outputText;
  const script = `
    const module = { exports: {} };
    new Function('module', 'exports', ${JSON.stringify(compiled)})(module, module.exports);
    const { Progress } = module.exports;
    const p = new Progress('bench', { intervalMs: 5 });
    p.update('suite invoke', { index: 1, total: 1 });
    p.log('== done');
  `;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
  expect(run.status).toBe(0);
  expect(run.stderr).toBe('== done\n');
});
