import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InvocationError, type IIIClient } from 'iii-sdk';
import { readTlsMaterial } from '../../src/config/tls-files';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { makeCertificates } from '../support/tls';

/**
 * The official Python iii-sdk (PyPI `iii-sdk`, pinned in test/support/python/requirements.txt) runs
 * as a worker in a child process and talks to Node iii-sdk workers through our engine.
 */

const ROOT = path.resolve(__dirname, '../..');
const PY_DIR = path.join(ROOT, 'test/support/python');
const REQUIREMENTS = path.join(PY_DIR, 'requirements.txt');
const WORKER_SCRIPT = path.join(PY_DIR, 'echo_worker.py');
const INSTALL_HINT =
  `Install it with: pip install -r test/support/python/requirements.txt ` +
  `(or: python3 -m venv .venv && .venv/bin/pip install -r test/support/python/requirements.txt; ` +
  `or point III_PYTHON at an interpreter that has it)`;

function pythonInterpreter(): string {
  if (process.env.III_PYTHON) return process.env.III_PYTHON;
  const venv = path.join(ROOT, '.venv/bin/python');
  return existsSync(venv) ? venv : 'python3';
}

function pinnedVersion(): string {
  const line = readFileSync(REQUIREMENTS, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^iii-sdk\s*==/.test(l));
  if (!line) throw new Error(`${REQUIREMENTS} does not pin iii-sdk`);
  return line.split('==')[1].trim();
}

/** Fails (never skips) when the interpreter lacks the pinned Python SDK. */
function checkPythonSdk(python: string): string {
  const probe = spawnSync(
    python,
    ['-c', 'import iii; from importlib.metadata import version; print(version("iii-sdk"))'],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.trim().split('\n').pop();
    throw new Error(`The Python iii-sdk cannot be imported by '${python}' (${why}). ${INSTALL_HINT}`);
  }
  const installed = probe.stdout.trim();
  const pinned = pinnedVersion();
  if (installed !== pinned) {
    throw new Error(`'${python}' has iii-sdk ${installed}, but the tests pin ${pinned}. ${INSTALL_HINT}`);
  }
  return installed;
}

interface PythonWorker {
  child: ChildProcessWithoutNullStreams;
  /** Complete stdout lines so far. */
  lines: string[];
  stderr(): string;
  waitForLine(predicate: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** Closes stdin (or sends `signal`), waits for a clean exit, SIGKILLs after 5 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function spawnPythonWorker(python: string, url: string, env: Record<string, string> = {}): PythonWorker {
  const child = spawn(python, ['-u', WORKER_SCRIPT, url], {
    cwd: PY_DIR,
    env: { ...process.env, PYTHONUNBUFFERED: '1', OTEL_ENABLED: 'false', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let errText = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts.map((l) => l.replace(/\r$/, '')));
  });
  child.stderr.on('data', (chunk: string) => {
    errText += chunk;
  });
  child.stdin.on('error', () => undefined); // EPIPE if the child already died
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedFlag = false;
  void exited.then(() => {
    exitedFlag = true;
  });

  return {
    child,
    lines,
    stderr: () => errText,
    async waitForLine(predicate, what, timeoutMs = 20_000) {
      try {
        return await waitFor(
          () => {
            const hit = lines.find(predicate);
            if (hit !== undefined) return hit;
            if (exitedFlag) throw new Error(`python worker exited (code ${child.exitCode}) before ${what}`);
            return undefined;
          },
          what,
          timeoutMs,
        );
      } catch (e) {
        throw new Error(
          `${(e as Error).message}\n--- python stdout ---\n${lines.join('\n')}\n--- python stderr ---\n${errText}`,
        );
      }
    },
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) {
        if (signal) child.kill(signal);
        else child.stdin.end(); // the script shuts its SDK down when stdin closes
        const graceful = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref()),
        ]);
        if (!graceful) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      child.stdout.destroy();
      child.stderr.destroy();
      child.stdin.destroy();
    },
  };
}

describe('the official Python iii-sdk as a worker', () => {
  const python = pythonInterpreter();
  let sdkVersion: string;
  let t: TestEngine;
  let node: IIIClient;
  let py: PythonWorker;
  const extra: PythonWorker[] = [];

  beforeAll(async () => {
    sdkVersion = checkPythonSdk(python);
    t = await startEngine();
    node = t.worker('node-caller');
    py = spawnPythonWorker(python, t.url);
    await py.waitForLine((l) => l === 'READY', 'READY from the python worker');
    await functionRegistered(t.engine, 'py::echo');
    await functionRegistered(t.engine, 'py::fail');
  }, 60_000);

  afterEach(async () => {
    await Promise.all(extra.splice(0).map((w) => w.stop()));
  });

  afterAll(async () => {
    await py?.stop();
    await t?.close();
  });

  test('a Node worker calls py::echo and gets the Python result (payload carries _caller_worker_id)', async () => {
    const callerId = await waitFor(
      () => [...t.engine.registry.workers()].find((w) => w.name === 'node-caller')?.id,
      'node-caller metadata',
    );
    const out = await node.trigger({ function_id: 'py::echo', payload: { n: 1 } });
    expect(out).toEqual({ echo: { n: 1, _caller_worker_id: callerId }, runtime: 'python' });
  });

  test('non-object payloads round-trip unchanged', async () => {
    await expect(node.trigger({ function_id: 'py::echo', payload: [1, 'two', null] })).resolves.toEqual({
      echo: [1, 'two', null],
      runtime: 'python',
    });
    await expect(node.trigger({ function_id: 'py::echo', payload: 'text' })).resolves.toEqual({
      echo: 'text',
      runtime: 'python',
    });
  });

  test('a Python exception reaches the Node caller as InvocationError invocation_failed with its message and traceback', async () => {
    const err = await node.trigger({ function_id: 'py::fail', payload: { reason: 'test' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvocationError);
    const e = err as InvocationError;
    // The Python SDK answers {code:"invocation_failed", message:str(exc), stacktrace:traceback.format_exc()}.
    expect(e.code).toBe('invocation_failed');
    expect(e.message).toBe('invocation_failed: python worker failed on purpose: test');
    expect(e.stacktrace).toEqual(expect.stringContaining('Traceback (most recent call last)'));
    expect(e.stacktrace).toEqual(expect.stringContaining('RuntimeError: python worker failed on purpose: test'));
  });

  test('the Python worker is listed by engine::workers::list with runtime python', async () => {
    const pyWorker = await waitFor(
      () => [...t.engine.registry.workers()].find((w) => w.name === 'py-echo' && w.pid !== undefined),
      'py-echo metadata',
    );
    const out = (await node.trigger({ function_id: 'engine::workers::list', payload: {} })) as {
      workers: Array<Record<string, unknown>>;
    };
    const listed = out.workers.find((w) => w.name === 'py-echo');
    expect(listed).toMatchObject({
      id: pyWorker.id,
      name: 'py-echo',
      description: 'Python iii-sdk echo worker (test)',
      runtime: 'python',
      version: sdkVersion,
      status: 'connected',
      function_count: 2,
    });
    expect(pyWorker.pid).toBe(py.child.pid);
    const filtered = (await node.trigger({ function_id: 'engine::workers::list', payload: { runtime: 'python' } })) as {
      workers: Array<Record<string, unknown>>;
    };
    expect(filtered.workers.map((w) => w.name)).toEqual(['py-echo']);
  });

  test('the Python worker calls a Node function and gets its result', async () => {
    const nodeFn = t.worker('node-double');
    nodeFn.registerFunction('node::double', async (data: { n: number }) => ({ doubled: data.n * 2, runtime: 'node' }));
    await functionRegistered(t.engine, 'node::double');
    const caller = spawnPythonWorker(python, t.url, {
      III_PY_WORKER_NAME: 'py-caller',
      III_PY_CALL_FUNCTION: 'node::double',
      III_PY_CALL_PAYLOAD: JSON.stringify({ n: 21 }),
    });
    extra.push(caller);
    const line = await caller.waitForLine(
      (l) => l.startsWith('NODE_RESULT ') || l.startsWith('NODE_ERROR '),
      'the python call to node::double',
    );
    expect(line.startsWith('NODE_RESULT ')).toBe(true);
    expect(JSON.parse(line.slice('NODE_RESULT '.length))).toEqual({ doubled: 42, runtime: 'node' });
  });

  test.each([
    ['its stdin closes', undefined],
    ['it gets SIGTERM', 'SIGTERM' as const],
  ])('a Python worker exits cleanly when %s and takes its functions with it', async (_how, signal) => {
    const other = spawnPythonWorker(python, t.url, { III_PY_WORKER_NAME: 'py-short-lived' });
    extra.push(other);
    await other.waitForLine((l) => l === 'READY', 'READY from the second python worker');
    await functionRegistered(t.engine, 'py::echo', 2);
    await other.stop(signal);
    // stderr rides along so a failure shows why the process died.
    expect({ code: other.child.exitCode, signal: other.child.signalCode, stderr: other.stderr() }).toMatchObject({
      code: 0,
      signal: null,
    });
    await waitFor(() => t.engine.registry.pool('py::echo').length === 1, 'py::echo pool back to 1');
    await expect(node.trigger({ function_id: 'py::echo', payload: { n: 2 } })).resolves.toMatchObject({
      echo: { n: 2 },
      runtime: 'python',
    });
  });
});

describe('the official Python iii-sdk over wss:// with the worker token', () => {
  const python = pythonInterpreter();
  const certs = makeCertificates();
  const token = 'py-token-0123456789abcdef';
  let t: TestEngine;
  const workers: PythonWorker[] = [];

  beforeAll(async () => {
    checkPythonSdk(python);
    const tls = readTlsMaterial(
      { certFile: certs.certFile, keyFile: certs.keyFile, minVersion: 'TLSv1.2' },
      { cert: 'test cert', key: 'test key' },
    );
    t = await startEngine({ listeners: testConfig().listeners.map((l) => ({ ...l, tls, authToken: token })) });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await t?.close();
    certs.remove();
  });

  test('a Python worker and a Python caller connect with ?token= and trust the CA through SSL_CERT_FILE', async () => {
    // The Python SDK reads the system trust store; SSL_CERT_FILE replaces it with the test CA.
    const url = `wss://127.0.0.1:${t.engine.port}?token=${token}`;
    const env = { SSL_CERT_FILE: certs.caFile };
    const server = spawnPythonWorker(python, url, env);
    workers.push(server);
    await functionRegistered(t.engine, 'py::echo');
    const caller = spawnPythonWorker(python, url, {
      ...env,
      III_PY_WORKER_NAME: 'py-tls-caller',
      III_PY_CALL_FUNCTION: 'py::echo',
      III_PY_CALL_PAYLOAD: JSON.stringify({ over: 'wss' }),
    });
    workers.push(caller);
    const line = await caller.waitForLine(
      (l) => l.startsWith('NODE_RESULT ') || l.startsWith('NODE_ERROR '),
      'the python call to py::echo over wss',
    );
    expect(line.startsWith('NODE_RESULT ')).toBe(true);
    expect(JSON.parse(line.slice('NODE_RESULT '.length))).toMatchObject({ echo: { over: 'wss' }, runtime: 'python' });
  });
});
