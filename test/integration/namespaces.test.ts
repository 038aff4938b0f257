import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { RawClient } from '../support/raw-client';
import { call, type Any } from '../support/calls';

/**
 * iii v0.23 namespaces, with the official Python iii-sdk 0.25 (PyPI) as the namespaced worker
 * and the Node iii-sdk 0.22 worker in `default`: registries keyed by (namespace, id), strict
 * routing, `registrationrejected` with both conflict codes, introspection rows with `namespace`.
 */

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'test/support/python/v025/ns_worker.py');
const INSTALL_HINT =
  'python3 -m venv .venv25 && .venv25/bin/pip install -r test/support/python/v025/requirements.txt (or set III_PYTHON_025 to an interpreter with iii-sdk 0.25)';

function python025(): string {
  const interpreter = process.env['III_PYTHON_025'] ?? path.join(ROOT, '.venv25/bin/python');
  if (!existsSync(interpreter))
    throw new Error(`The Python iii-sdk 0.25 is not installed at ${interpreter}. Install it with: ${INSTALL_HINT}`);
  return interpreter;
}

interface PyWorker {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
}

let t: TestEngine;
const children: PyWorker[] = [];
const raws: RawClient[] = [];

async function pyWorker(
  name: string,
  namespace: string,
  functionId: string,
  tag: string,
  env: NodeJS.ProcessEnv = {},
): Promise<PyWorker> {
  const child = spawn(python025(), [SCRIPT, t.url, name, namespace, functionId, tag], {
    env: { ...process.env, ...env },
  });
  const worker: PyWorker = { child, lines: [] };
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    worker.lines.push(...parts);
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  children.push(worker);
  await waitFor(() => worker.lines.includes('READY') || child.exitCode !== null, 'the Python worker', 15_000);
  if (child.exitCode !== null) throw new Error(`the Python worker exited: ${stderr}`);
  return worker;
}

async function raw(): Promise<RawClient> {
  const client = await RawClient.connect(t.url);
  raws.push(client);
  await client.registered();
  return client;
}

/** One call over the raw protocol, with an optional `namespace`; resolves with the invocationresult. */
async function rawCall(client: RawClient, functionId: string, data: unknown, namespace?: string): Promise<Any> {
  const invocationId = randomUUID();
  client.send({
    type: 'invokefunction',
    invocation_id: invocationId,
    function_id: functionId,
    data,
    ...(namespace === undefined ? {} : { namespace }),
  });
  return client.next((m) => m.type === 'invocationresult' && m['invocation_id'] === invocationId, 5000);
}

const inNamespace = (namespace: string, id: string) => `${namespace}\u241f${id}`;

beforeEach(async () => {
  t = await startEngine({ namespaceGraceMs: 1500 });
});
afterEach(async () => {
  for (const client of raws.splice(0)) client.close();
  for (const worker of children.splice(0)) {
    worker.child.stdin.end();
    worker.child.kill('SIGTERM');
  }
  await t.close();
});

test('a namespaced worker serves its id in its namespace only; routing is strict; not-found names the namespaces that have the id', async () => {
  const node = t.worker('node-default');
  node.registerFunction('cart::add', async () => ({ served_by: 'node-default' }));
  await functionRegistered(t.engine, 'cart::add');
  await pyWorker('shop-worker', 'shop', 'cart::add', 'python-shop');
  await functionRegistered(t.engine, inNamespace('shop', 'cart::add'));

  const client = await raw();
  expect((await rawCall(client, 'cart::add', { n: 1 }, 'shop')).result).toMatchObject({
    served_by: 'python-shop',
    input: { n: 1 },
  });
  expect((await rawCall(client, 'cart::add', {})).result).toEqual({ served_by: 'node-default' });
  expect((await rawCall(client, 'cart::add', {}, 'default')).result).toEqual({ served_by: 'node-default' });
  const missing = await rawCall(client, 'cart::add', {}, 'billing');
  expect(missing.error).toEqual({
    code: 'function_not_found',
    message: "Function cart::add not found in namespace 'billing'; it is registered in namespaces 'default', 'shop'",
  });
  // engine::* ids live in default whatever namespace a call names.
  expect((await rawCall(client, 'engine::functions::list', {}, 'shop')).error).toBeUndefined();

  const { functions } = await call(node, 'engine::functions::list', {});
  const rows = (functions as Any[]).filter((f) => f.function_id === 'cart::add');
  expect(rows.map((r) => r.namespace).sort()).toEqual(['default', 'shop']);
  const { workers } = await call(node, 'engine::workers::list', {});
  expect((workers as Any[]).find((w) => w.name === 'shop-worker')?.namespace).toBe('shop');
  expect(
    (await call(node, 'engine::functions::info', { function_id: 'cart::add', namespace: 'shop' })).worker_name,
  ).toBe('shop-worker');
}, 30_000);

test('a call made by a namespaced worker resolves in its own namespace', async () => {
  await pyWorker('shop-a', 'shop', 'shop::price', 'price-in-shop');
  await functionRegistered(t.engine, inNamespace('shop', 'shop::price'));
  const caller = await pyWorker('shop-b', 'shop', 'shop::other', 'b', { III_PY_CALL: 'shop::price' });
  await waitFor(() => caller.lines.find((l) => l.startsWith('CALL_')), 'the Python call', 10_000);
  const line = caller.lines.find((l) => l.startsWith('CALL_'))!;
  expect(line.startsWith('CALL_RESULT ')).toBe(true);
  expect(JSON.parse(line.slice('CALL_RESULT '.length))).toMatchObject({ served_by: 'price-in-shop' });
}, 30_000);

test('replicas of one worker pool in a namespace; a worker of another name registering the same id there is refused FUNCTION_NAMESPACE_CONFLICT and keeps its connection', async () => {
  await pyWorker('inventory', 'shop', 'stock::get', 'replica-1');
  await pyWorker('inventory', 'shop', 'stock::get', 'replica-2');
  await functionRegistered(t.engine, inNamespace('shop', 'stock::get'), 2);

  const intruder = await RawClient.connect(t.url);
  raws.push(intruder);
  await intruder.registered();
  intruder.send({ type: 'registerfunction', id: 'stock::get' });
  intruder.send({ type: 'registerfunction', id: 'stock::other' });
  intruder.send({
    type: 'invokefunction',
    function_id: 'engine::workers::register',
    data: { name: 'intruder', runtime: 'raw', namespace: 'shop' },
    action: { type: 'void' },
  });
  const rejected = await intruder.next((m) => m.type === 'registrationrejected');
  expect(rejected).toMatchObject({ code: 'FUNCTION_NAMESPACE_CONFLICT', namespace: 'shop', function_id: 'stock::get' });
  await functionRegistered(t.engine, inNamespace('shop', 'stock::other'));
  expect(t.engine.registry.pool(inNamespace('shop', 'stock::get'))).toHaveLength(2);
  expect(intruder.closed).toBeUndefined();

  const client = await raw();
  const servers = new Set<string>();
  for (let i = 0; i < 6; i++) servers.add((await rawCall(client, 'stock::get', {}, 'shop')).result.served_by);
  expect([...servers].sort()).toEqual(['replica-1', 'replica-2']);
}, 30_000);

test('a namespace declared after the grace period is WORKER_NAMESPACE_CONFLICT and the connection closes; engine-owned ids are refused outside default', async () => {
  const late = await RawClient.connect(t.url);
  raws.push(late);
  await late.registered();
  late.send({ type: 'registerfunction', id: 'late::fn' });
  await functionRegistered(t.engine, 'late::fn');
  await new Promise((r) => setTimeout(r, 1700));
  late.send({
    type: 'invokefunction',
    function_id: 'engine::workers::register',
    data: { name: 'late', runtime: 'raw', namespace: 'shop' },
    action: { type: 'void' },
  });
  expect(await late.next((m) => m.type === 'registrationrejected')).toMatchObject({
    code: 'WORKER_NAMESPACE_CONFLICT',
    namespace: 'shop',
    worker_name: 'late',
  });
  expect((await late.waitClosed()).code).toBe(1008);

  const owned = await RawClient.connect(t.url);
  raws.push(owned);
  await owned.registered();
  owned.send({
    type: 'invokefunction',
    function_id: 'engine::workers::register',
    data: { name: 'owned', runtime: 'raw', namespace: 'shop' },
    action: { type: 'void' },
  });
  await waitFor(() => [...t.engine.registry.workers()].some((w) => w.namespace === 'shop'), 'the declaration');
  owned.send({ type: 'registerfunction', id: 'engine::mine' });
  expect(await owned.next((m) => m.type === 'registrationrejected')).toMatchObject({
    code: 'FUNCTION_NAMESPACE_CONFLICT',
    function_id: 'engine::mine',
  });
  expect((await rawCall(owned, 'engine::functions::list', {}, 'shop')).error).toBeUndefined();
}, 30_000);

test('rbac rules {match, namespace} expose the functions of that namespace only', async () => {
  await t.close();
  const base = testConfig();
  const listener = { ...base.listeners[0], rbac: { expose_functions: [{ match: 'cart::*', namespace: 'shop' }] } };
  t = await startEngine({ listeners: [listener], namespaceGraceMs: 1500 });
  await pyWorker('shop-worker', 'shop', 'cart::add', 'python-shop');
  const node = t.worker('node-default');
  node.registerFunction('cart::add', async () => 'default');
  await functionRegistered(t.engine, 'cart::add');
  await functionRegistered(t.engine, inNamespace('shop', 'cart::add'));
  const client = await raw();
  expect((await rawCall(client, 'cart::add', {}, 'shop')).result).toMatchObject({ served_by: 'python-shop' });
  expect((await rawCall(client, 'cart::add', {})).error).toMatchObject({ code: 'FORBIDDEN' });
}, 30_000);
