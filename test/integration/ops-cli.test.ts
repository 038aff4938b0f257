import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import { call, type Any } from '../support/calls';
import { runCli } from '../support/cli';
import { waitFor } from '../support/engine';
import { freePort, startNodeProcess, type NodeProcess } from '../support/node-process';

/**
 * The operator commands (`iii-cluster trigger|functions|workers|nodes|queues|dlq|config check`)
 * run as real processes against a real engine process that requires a worker token, with a
 * real iii-sdk worker serving functions and consuming a queue. Exit codes: 0 ok, 1 the
 * function answered an error, 2 bad command line or config, 3 no answer.
 */

const TOKEN = 'ops-cli-token';

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

let dir: string;
let node: NodeProcess;
let worker: IIIClient;
let broken = true;
const delivered: string[] = [];
/** The options every command against the engine takes; the token comes from the environment. */
let target: string[];
const withToken = { env: { III_WORKER_TOKEN: TOKEN } };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-ops-cli-'));
  await writeFile(join(dir, 'config.yaml'), CONFIG);
  node = await startNodeProcess({
    nodeId: 'ops-node',
    cwd: dir,
    args: ['--config', 'config.yaml'],
    env: { III_WORKER_TOKEN: TOKEN },
  });
  target = ['--url', node.url];
  worker = registerWorker(node.url, {
    workerName: 'ops-app',
    enableMetricsReporting: false,
    otel: { enabled: false },
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  // The engine adds `_caller_worker_id` to an object payload (as iii does): not echoed.
  worker.registerFunction('ops::echo', async (data: unknown) => ({ echoed: withoutCaller(data) }), {
    description: 'Answers with its payload',
  });
  worker.registerFunction('ops::fail', async () => {
    throw new Error('the ledger is locked');
  });
  worker.registerFunction('ops::never', () => new Promise(() => undefined));
  worker.registerFunction('ops::repairable', async (data: { name: string }) => {
    if (broken) throw new Error('downstream is down');
    delivered.push(data.name);
  });
  await waitFor(
    async () => {
      const listed: Any = await call(worker, 'engine::functions::list', { prefix: 'ops::' });
      return listed.functions.length === 4;
    },
    'the worker functions registered',
    10_000,
  );
});

function withoutCaller(data: unknown): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const { _caller_worker_id: _caller, ...rest } = data as Record<string, unknown>;
  return rest;
}

afterAll(async () => {
  await worker?.shutdown().catch(() => undefined);
  await node?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('trigger', () => {
  test('prints the result as indented JSON and exits 0', async () => {
    const run = await runCli(['trigger', 'ops::echo', '{"order":42}', ...target], withToken);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(`${JSON.stringify({ echoed: { order: 42 } }, null, 2)}\n`);
  });

  test('--json prints the result as one line of JSON', async () => {
    const run = await runCli(['trigger', 'ops::echo', '[1,"two"]', '--json', ...target], withToken);
    expect(run).toMatchObject({ code: 0, stdout: '{"echoed":[1,"two"]}\n' });
  });

  test('- reads the payload from stdin; no payload sends {}', async () => {
    const piped = await runCli(['trigger', 'ops::echo', '-', '--json', ...target], {
      ...withToken,
      input: '{"from":"stdin"}\n',
    });
    expect(piped).toMatchObject({ code: 0, stdout: '{"echoed":{"from":"stdin"}}\n' });
    const bare = await runCli(['trigger', 'ops::echo', '--json', ...target], withToken);
    expect(bare).toMatchObject({ code: 0, stdout: '{"echoed":{}}\n' });
  });

  test('a function that answers an error: exit 1, its code and message on stderr, nothing on stdout', async () => {
    const run = await runCli(['trigger', 'ops::fail', '{}', ...target], withToken);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^iii-cluster: ops::fail answered an error: \S+: .*the ledger is locked/);
    const missing = await runCli(['trigger', 'ops::nothing-here', ...target], withToken);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('function_not_found');
  });

  test('a wrong token: exit 3, "auth refused" on stderr; --token wins over III_WORKER_TOKEN', async () => {
    const run = await runCli(['trigger', 'ops::echo', ...target, '--token', 'not-the-token'], withToken);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/auth refused by ws:\/\/127\.0\.0\.1:\d+ \(HTTP 401\): UNAUTHORIZED: .*token/);
    const none = await runCli(['functions', ...target]);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('auth refused');
  });

  test('an unreachable URL: exit 3 at once, "cannot connect" on stderr', async () => {
    const port = await freePort();
    const run = await runCli(['trigger', 'ops::echo', '--url', `ws://127.0.0.1:${port}`], withToken);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot connect to ws://127.0.0.1:${port}: ECONNREFUSED`);
    expect(run.elapsedMs).toBeLessThan(5000);
  });

  test('a server that accepts but never answers the upgrade: exit 3 with "timeout" at --timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const run = await runCli(['nodes', '--timeout', '700', '--url', `ws://127.0.0.1:${port}`], withToken);
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`timeout: no connection to ws://127.0.0.1:${port}`);
      expect(run.elapsedMs).toBeLessThan(5000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a function that never answers: exit 3 with "timeout" at --timeout', async () => {
    const run = await runCli(['trigger', 'ops::never', '--timeout', '700', ...target], withToken);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('timeout: no answer from ops::never');
    expect(run.elapsedMs).toBeGreaterThanOrEqual(700);
    expect(run.elapsedMs).toBeLessThan(5000);
  });

  test('stdin that never closes ends at the deadline too', async () => {
    const run = await runCli(['trigger', 'ops::echo', '-', '--timeout', '500', ...target], {
      ...withToken,
      holdStdin: true,
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('timeout: stdin was not closed');
  });

  test('a payload that is not JSON, or a bad option: exit 2, before any connection', async () => {
    const run = await runCli(['trigger', 'ops::echo', '{order: 42}', '--url', 'ws://127.0.0.1:1'], withToken);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('the payload is not JSON');
    const commandLines = [
      ['trigger', ...target],
      ['trigger', 'ops::echo', '--timeout', 'soon', ...target],
      ['functions', '--colour', ...target],
      ['trigger', 'ops::echo', '--url', 'http://x'],
      ['dlq', 'purge', 'dead', ...target],
    ];
    for (const args of commandLines) {
      const bad = await runCli(args, withToken);
      expect({ args, code: bad.code, stdout: bad.stdout }).toEqual({ args, code: 2, stdout: '' });
    }
  });
});

describe('listings', () => {
  test('functions: a table of the registered functions, and --json their summaries', async () => {
    const table = await runCli(['functions', ...target], withToken);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^FUNCTION +NAMESPACE +WORKER +DESCRIPTION$/);
    const echo = lines.find((line) => line.startsWith('ops::echo '));
    expect(echo).toMatch(/^ops::echo +default +ops-app +Answers with its payload$/);
    // Aligned: every column starts at the same offset on every line.
    expect(echo!.indexOf('ops-app')).toBe(lines[0].indexOf('WORKER'));
    const json = await runCli(['functions', '--json', ...target], withToken);
    expect(JSON.parse(json.stdout)).toEqual(
      expect.arrayContaining([
        {
          function_id: 'ops::echo',
          namespace: 'default',
          worker_name: 'ops-app',
          description: 'Answers with its payload',
        },
      ]),
    );
  });

  test("workers: the worker and the modules, not the command's own connection", async () => {
    const json = await runCli(['workers', '--json', ...target], withToken);
    expect(json.code).toBe(0);
    const workers: Any[] = JSON.parse(json.stdout);
    expect(workers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'ops-app', status: 'connected', runtime: 'node', function_count: 4 }),
      ]),
    );
    expect(workers).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'iii-queue', status: 'available' })]),
    );
    expect(workers.filter((w) => w.status === 'connected')).toHaveLength(1);
    const table = await runCli(['workers', ...target], withToken);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME +ID +RUNTIME +STATUS +FUNCTIONS +ACTIVE +CONNECTED$/);
    expect(table.stdout).toMatch(/\nops-app +\S+ +node +connected +4 +\d+ +\d+s ago\n/);
  });

  test('nodes: a single node lists itself, ready, with its one worker', async () => {
    const json = await runCli(['nodes', '--json', ...target], withToken);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        node_id: 'ops-node',
        state: 'ready',
        self: true,
        url: null,
        started_at_ms: expect.any(Number),
        uptime_ms: expect.any(Number),
        worker_count: 1,
      },
    ]);
    const table = await runCli(['nodes', ...target], withToken);
    expect(table.stdout).toMatch(
      /^NODE +STATE +UPTIME +WORKERS +URL\nops-node \* +ready +\d+s +1\n\(\* the node that answered\)\n$/,
    );
  });

  test('queues: every named queue with its depth, consumers and dead letters', async () => {
    const json = await runCli(['queues', '--json', ...target], withToken);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(
      expect.arrayContaining([
        {
          name: 'dead',
          broker_type: 'function_queue',
          depth: 0,
          consumer_count: expect.any(Number),
          dlq_depth: expect.any(Number),
        },
        expect.objectContaining({ name: 'default', broker_type: 'function_queue' }),
      ]),
    );
    const table = await runCli(['queues', ...target], withToken);
    expect(table.stdout).toMatch(/^QUEUE +TYPE +DEPTH +CONSUMERS +DEAD LETTERS\n/);
    expect(table.stdout).toMatch(/\ndead +function_queue +0 +\d+ +\d+\n/);
  });
});

describe('dlq', () => {
  test('redrive <queue> <id> moves one dead letter back, redrive <queue> the rest; an unknown id exits 1', async () => {
    for (const name of ['first', 'second']) {
      await worker.trigger({
        function_id: 'ops::repairable',
        payload: { name },
        action: TriggerAction.Enqueue({ queue: 'dead' }),
      });
    }
    const dead = async (): Promise<Any[]> =>
      JSON.parse((await runCli(['dlq', 'list', 'dead', '--json', ...target], withToken)).stdout);
    await waitFor(async () => (await dead()).length === 2, 'two dead letters', 10_000);
    const letters = await dead();
    const first = letters.find((l) => l.payload.name === 'first');
    const listed = await runCli(['dlq', 'list', 'dead', ...target], withToken);
    expect(listed.stdout).toMatch(new RegExp(`\\n${first.id} +\\d{4}-\\d\\d-\\d\\dT\\S+ +1 +.*downstream is down`));
    broken = false;

    const one = await runCli(['dlq', 'redrive', 'dead', first.id, ...target], withToken);
    expect(one).toMatchObject({ code: 0, stdout: `dead letter ${first.id} of dead moved back to the queue\n` });
    await waitFor(() => delivered.includes('first'), 'the redriven letter delivered', 10_000);
    const again = await runCli(['dlq', 'redrive', 'dead', first.id, '--json', ...target], withToken);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toEqual({ queue: 'dead', message_id: first.id, redriven: 0 });
    expect(again.stderr).toContain(`dead has no dead letter ${first.id}`);

    const rest = await runCli(['dlq', 'redrive', 'dead', ...target], withToken);
    expect(rest).toMatchObject({ code: 0, stdout: '1 dead letter(s) of dead moved back to the queue\n' });
    await waitFor(() => delivered.includes('second'), 'the other letter delivered', 10_000);
    expect(delivered.sort()).toEqual(['first', 'second']);
    expect(await dead()).toEqual([]);
  });

  test("an unknown queue is the function's error: exit 1 with queue_not_found", async () => {
    const run = await runCli(['dlq', 'redrive', 'no-such-queue', ...target], withToken);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('queue_not_found');
  });
});

describe('config check', () => {
  test('a valid file: exit 0, "valid" on stdout and its warnings on stderr, without any engine', async () => {
    const file = join(dir, 'with-external.yaml');
    await writeFile(file, `${CONFIG}  - name: todo-worker\n`);
    const run = await runCli(['config', 'check', file, '--url', 'ws://127.0.0.1:1']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${file}: valid (1 warning)\n`);
    expect(run.stderr).toMatch(/^warning: .*worker "todo-worker".*external workers are not started by iii-cluster/);
    const json = await runCli(['config', 'check', join(dir, 'config.yaml'), '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ file: join(dir, 'config.yaml'), valid: true, warnings: [], notices: [] });
  });

  test('an invalid or missing file: exit 2 with the reason', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'workers:\n  - name: iii-worker-manager\n    config:\n      port: seventy\n');
    const run = await runCli(['config', 'check', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^iii-cluster: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is invalid: .*port`),
    );
    const json = await runCli(['config', 'check', file, '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ file, valid: false, error: expect.stringContaining('port') });
    const missing = await runCli(['config', 'check', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('config file not found');
  });
});

test('--help lists the operator commands and their exit codes', async () => {
  for (const args of [['--help'], ['trigger', '--help']]) {
    const run = await runCli(args);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('iii-cluster trigger <function_id> [json|-]');
    expect(run.stdout).toContain('3  no answer: cannot connect, auth refused, or timeout');
  }
});
