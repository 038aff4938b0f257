import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { registerWorker, type IIIClient } from 'iii-sdk';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import { TERM_GRACE_MS } from '../../src/modules/exec/command-process';
import { RESTART_INITIAL_DELAY_MS } from '../../src/modules/exec/restart-backoff';
import { call, type Any } from '../support/calls';
import { sleep, testConfig, waitFor } from '../support/engine';
import { startNodeProcess } from '../support/node-process';

/**
 * iii-exec with real processes: `/bin/sh` commands and, as the kept-running command, a real
 * iii-sdk worker (test/support is not involved: the child is a plain `node worker.js`).
 */

const SDK = require.resolve('iii-sdk');
const FUNCTION = 'exec-test::whoami';

/**
 * The child worker. Its function answers what the test checks: its pid, the III_URL it got,
 * and what the prep commands and the watched file hold right now. IGNORE_TERM=1 makes it
 * survive SIGTERM, as a stuck process would.
 */
const WORKER_JS = `
const fs = require('node:fs');
const { registerWorker } = require(${JSON.stringify(SDK)});
if (process.env.IGNORE_TERM === '1') process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
const iii = registerWorker(process.env.III_URL, { workerName: 'exec-child', enableMetricsReporting: false, otel: { enabled: false } });
const read = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null);
iii.registerFunction(${JSON.stringify(FUNCTION)}, async () => ({
  pid: process.pid,
  url: process.env.III_URL,
  runs: read('runs.txt'),
  version: read('src/lib/version.ts'),
}));
console.log('worker up ' + process.pid);
`;

interface LogRecord {
  level: number;
  msg: string;
  command?: string;
  stream?: string;
  [key: string]: unknown;
}

const WARN = 40;
const ERROR = 50;

interface ExecEngine {
  engine: Engine;
  dir: string;
  logs: LogRecord[];
  client: IIIClient;
  /** Calls the child's function until it answers from a pid other than `not` (the previous child). */
  whoami(not?: number, timeoutMs?: number): Promise<Any>;
  close(): Promise<void>;
}

/** A fresh project directory holding the worker, and an engine whose iii-exec runs `exec(dir)` there. */
async function startExecEngine(
  exec: (dir: string) => string[],
  watch: (dir: string) => string[] = () => [],
): Promise<ExecEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-exec-'));
  fs.writeFileSync(path.join(dir, 'worker.js'), WORKER_JS);
  fs.mkdirSync(path.join(dir, 'src/lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'src/lib/version.ts'), 'export const version = 1;\n');
  const logs: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogRecord);
      done();
    },
  });
  const base = testConfig();
  const config = testConfig({
    modules: { ...base.modules, exec: { enabled: true, config: { exec: exec(dir), watch: watch(dir) } } },
  });
  const engine = createEngine(config, { logger: pino({ level: 'info' }, sink) });
  await engine.start();
  const client = registerWorker(`ws://127.0.0.1:${engine.port}`, {
    workerName: 'exec-test',
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  const whoami = (not?: number, timeoutMs = 15_000): Promise<Any> =>
    waitFor(
      async () => {
        const answer: Any = await call(client, FUNCTION, {}).catch(() => undefined);
        return answer !== undefined && answer.pid !== not ? answer : undefined;
      },
      `${FUNCTION} served by a child other than ${not}`,
      timeoutMs,
    );
  return {
    engine,
    dir,
    logs,
    client,
    whoami,
    async close() {
      await client.shutdown().catch(() => undefined);
      await engine.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether `pid` still runs. A direct child of the engine is reaped by Node and gives ESRCH. A
 * grandchild whose parent died is reparented to PID 1, and this container's PID 1 does not reap:
 * it stays a zombie (state Z), which holds nothing and can never run again, so it counts as gone.
 */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** Log records about `command` (prep and kept-running commands are tagged with it). */
function about(logs: LogRecord[], command: string): LogRecord[] {
  return logs.filter((r) => r.command === command);
}

describe('iii-exec: prep commands, then a kept-running iii-sdk worker', () => {
  const prep1 = (dir: string) => `cd '${dir}' && echo run >> runs.txt`;
  const prep2 = (dir: string) => `cd '${dir}' && test -s runs.txt`;
  const worker = (dir: string) => `cd '${dir}' && exec node worker.js`;
  let t: ExecEngine;
  beforeAll(async () => {
    t = await startExecEngine((dir) => [prep1(dir), prep2(dir), worker(dir)]);
  });
  afterAll(async () => {
    await t.close();
  });

  test('runs the prep commands once, in order; the last one connects with III_URL and its function is callable', async () => {
    const answer = await t.whoami();
    expect(answer.url).toBe(`ws://127.0.0.1:${t.engine.port}`);
    expect(answer.runs).toBe('run\n');
    expect(running(answer.pid)).toBe(true);
    // Each command is announced, in order, with its step.
    const started = t.logs.filter((r) => typeof r['step'] === 'string').map((r) => [r.command, r['step']]);
    expect(started).toEqual([
      [prep1(t.dir), '1/3'],
      [prep2(t.dir), '2/3'],
      [worker(t.dir), '3/3'],
    ]);
    // The child's stdout reaches the engine's log, tagged with its command.
    await waitFor(
      () => about(t.logs, worker(t.dir)).some((r) => r.stream === 'stdout' && r.msg === `worker up ${answer.pid}`),
      'the worker stdout line in the log',
    );
  });

  test('a kept-running command killed with SIGKILL is started again after the backoff (the prep commands are not re-run)', async () => {
    const before = await t.whoami();
    const killedAt = Date.now();
    process.kill(before.pid, 'SIGKILL');
    const after = await t.whoami(before.pid);
    expect(after.pid).not.toBe(before.pid);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(RESTART_INITIAL_DELAY_MS);
    expect(running(before.pid)).toBe(false);
    expect(after.runs).toBe('run\n');
    const exited = about(t.logs, worker(t.dir)).find((r) => r.signal === 'SIGKILL');
    expect(exited).toMatchObject({ level: WARN, retryInMs: RESTART_INITIAL_DELAY_MS });
    expect(exited!.msg).toContain('was killed by SIGKILL');
  });

  test('engine stop ends the kept-running command at once when it honours SIGTERM', async () => {
    const { pid } = await t.whoami();
    const startedAt = Date.now();
    await t.client.shutdown();
    await t.engine.stop();
    expect(Date.now() - startedAt).toBeLessThan(TERM_GRACE_MS);
    expect(running(pid)).toBe(false);
    expect(t.logs.some((r) => String(r.msg).includes('after SIGTERM'))).toBe(false);
  });
});

describe('iii-exec: a failing prep command', () => {
  // Fails on its first run, succeeds on the second: the count lives in a file.
  const flaky = (dir: string) =>
    `cd '${dir}' && n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries; echo "try $n" >&2; [ $n -ge 2 ]`;
  let t: ExecEngine;
  beforeAll(async () => {
    t = await startExecEngine((dir) => [flaky(dir), `cd '${dir}' && exec node worker.js`]);
  });
  afterAll(async () => {
    await t.close();
  });

  test('is logged as an error naming the command and its exit code; the commands run again and the worker comes up', async () => {
    await t.whoami();
    expect(fs.readFileSync(path.join(t.dir, 'tries'), 'utf8')).toBe('2\n');
    const failed = about(t.logs, flaky(t.dir)).filter((r) => r.level === ERROR);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ code: 1, signal: null, retryInMs: RESTART_INITIAL_DELAY_MS });
    expect(failed[0].msg).toContain('exited with code 1; running the commands again from the first in 1000 ms');
    // Its stderr was logged too, once per try.
    expect(
      about(t.logs, flaky(t.dir))
        .filter((r) => r.stream === 'stderr')
        .map((r) => r.msg),
    ).toEqual(['try 1', 'try 2']);
  });
});

describe('iii-exec: watch', () => {
  const prep = (dir: string) => `cd '${dir}' && echo run >> runs.txt`;
  let t: ExecEngine;
  beforeAll(async () => {
    t = await startExecEngine(
      (dir) => [prep(dir), `cd '${dir}' && exec node worker.js`],
      (dir) => [`${dir}/src/**/*.ts`],
    );
  });
  afterAll(async () => {
    await t.close();
  });

  test('a file outside the pattern (other extension) changes: nothing restarts', async () => {
    const { pid } = await t.whoami();
    fs.writeFileSync(path.join(t.dir, 'src/lib/notes.md'), 'not watched\n');
    fs.writeFileSync(path.join(t.dir, 'version.ts'), 'outside the root\n');
    await sleep(1000); // three times the debounce
    const answer = await t.whoami();
    expect(answer.pid).toBe(pid);
    expect(answer.runs).toBe('run\n');
  });

  test('a matching file changes: the commands run again from the first, and the new worker sees the change', async () => {
    const before = await t.whoami();
    const file = path.join(t.dir, 'src/lib/version.ts');
    fs.writeFileSync(file, 'export const version = 2;\n');
    const after = await t.whoami(before.pid);
    expect(after.version).toBe('export const version = 2;\n');
    expect(after.runs).toBe('run\nrun\n');
    expect(running(before.pid)).toBe(false);
    expect(
      t.logs.some((r) => r['file'] === file && String(r.msg).includes('changed; running the commands again')),
    ).toBe(true);
  });
});

describe('iii-exec: backoff', () => {
  // The worker starts only once src/ok.ts exists: until then the kept-running command exits 1.
  const gated = (dir: string) => `cd '${dir}' && test -f src/ok.ts && exec node worker.js`;
  let t: ExecEngine;
  beforeAll(async () => {
    t = await startExecEngine(
      (dir) => [gated(dir)],
      (dir) => [`${dir}/src/**/*.ts`],
    );
  });
  afterAll(async () => {
    await t.close();
  });

  test('doubles while the last command keeps exiting; a watched change cuts the wait short', async () => {
    const retries = () =>
      about(t.logs, gated(t.dir))
        .filter((r) => r.level === WARN)
        .map((r) => r['retryInMs']);
    await waitFor(() => retries().length >= 3, 'three exits of the gated command', 10_000);
    expect(retries().slice(0, 3)).toEqual([1000, 2000, 4000]);
    // Now a 4 s (or longer) pause runs: the change restarts without waiting for it.
    const changedAt = Date.now();
    fs.writeFileSync(path.join(t.dir, 'src/ok.ts'), 'export {};\n');
    await t.whoami(undefined, 10_000);
    expect(Date.now() - changedAt).toBeLessThan(3000);
  });
});

describe('iii-exec: engine stop during the backoff', () => {
  test('returns at once, and nothing is started afterwards', async () => {
    const t = await startExecEngine(() => ['exit 3']);
    await waitFor(() => t.logs.some((r) => r['retryInMs'] === 2000), 'the second exit of `exit 3`', 5000);
    const startedAt = Date.now();
    await t.close();
    expect(Date.now() - startedAt).toBeLessThan(1000);
    const starts = t.logs.filter((r) => typeof r['step'] === 'string').length;
    await sleep(2500); // past the pending 2 s restart
    expect(t.logs.filter((r) => typeof r['step'] === 'string').length).toBe(starts);
  });
});

describe('iii-exec: engine stop with a command that ignores SIGTERM', () => {
  // The shell ignores TERM (and so does the `sleep` it leaves in the background); the worker
  // it becomes (exec) catches it. Only SIGKILL ends them.
  const stubborn = (dir: string) =>
    `cd '${dir}' && trap '' TERM; sleep 300 & echo $! > sleep.pid; IGNORE_TERM=1 exec node worker.js`;
  let t: ExecEngine;
  beforeAll(async () => {
    t = await startExecEngine((dir) => [stubborn(dir)]);
  });
  afterAll(async () => {
    await t.close();
  });

  test('SIGKILL after the grace: stop() returns with no process of the group left', async () => {
    const { pid } = await t.whoami();
    const sleepPid = Number(fs.readFileSync(path.join(t.dir, 'sleep.pid'), 'utf8'));
    expect(running(pid)).toBe(true);
    expect(running(sleepPid)).toBe(true);
    const startedAt = Date.now();
    await t.client.shutdown();
    await t.engine.stop();
    const stopMs = Date.now() - startedAt;
    expect(stopMs).toBeGreaterThanOrEqual(TERM_GRACE_MS);
    expect(stopMs).toBeLessThan(TERM_GRACE_MS + 3000);
    expect(running(pid)).toBe(false);
    expect(running(sleepPid)).toBe(false);
    expect(
      about(t.logs, stubborn(t.dir)).some(
        (r) =>
          r.level === WARN &&
          r.msg.includes(`still running ${TERM_GRACE_MS} ms after SIGTERM: killing its process group`),
      ),
    ).toBe(true);
    expect(about(t.logs, stubborn(t.dir)).some((r) => r.stream === 'stdout' && r.msg === 'ignoring SIGTERM')).toBe(
      true,
    );
  });
});

describe('iii-exec in the iii-cluster process (dist), from a config.yaml', () => {
  test('commands run in the engine directory; a second signal exits at once and the children get SIGKILL on the way out', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-exec-cli-'));
    fs.writeFileSync(path.join(dir, 'worker.js'), WORKER_JS);
    fs.writeFileSync(
      path.join(dir, 'config.yaml'),
      [
        'workers:',
        '  - name: iii-exec',
        '    config:',
        '      exec:',
        '        - "echo run >> runs.txt"',
        `        - "trap '' TERM; IGNORE_TERM=1 exec node worker.js"`,
        '',
      ].join('\n'),
    );
    // LOG_LEVEL info: the child's stdout lines are in the engine's output.
    const node = await startNodeProcess({
      nodeId: 'exec-cli',
      cwd: dir,
      args: ['--config', 'config.yaml'],
      env: { LOG_LEVEL: 'info' },
    });
    const client = registerWorker(node.url, {
      workerName: 'exec-test',
      enableMetricsReporting: false,
      otel: { enabled: false },
    });
    try {
      const answer: Any = await waitFor(() => call(client, FUNCTION, {}).catch(() => undefined), FUNCTION, 15_000);
      // The listener is on 0.0.0.0 (the default): the child is sent to loopback.
      expect(answer.url).toBe(node.url);
      expect(answer.runs).toBe('run\n');
      await client.shutdown();
      // First signal: drain, then iii-exec's SIGTERM, which the child ignores (a 5 s grace).
      const exited = node.kill('SIGTERM');
      await waitFor(() => node.output().includes('ignoring SIGTERM'), 'the child to get (and ignore) SIGTERM', 10_000);
      expect(running(answer.pid)).toBe(true);
      // Second signal: the process exits at once (130) and takes the child with it.
      const secondAt = Date.now();
      await Promise.all([node.kill('SIGINT'), exited]);
      expect(Date.now() - secondAt).toBeLessThan(TERM_GRACE_MS);
      await waitFor(() => !running(answer.pid), `child ${answer.pid} gone`, 2000);
      expect(node.output()).toContain('second signal while stopping');
    } finally {
      await client.shutdown().catch(() => undefined);
      await node.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
