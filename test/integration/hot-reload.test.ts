import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { call, failure, type Any } from '../support/calls';

/**
 * Hot reload against a real engine process: an edit of config.yaml, or a worker's settings set
 * through the configuration module, applies without a restart where it can (here: HTTP CORS
 * and timeout); what needs a restart is logged; an invalid edit changes nothing. The worker's
 * connection and its routes stay up throughout.
 */

function config(http: string): string {
  return `
workers:
  - name: iii-worker-manager
  - name: configuration
  - name: iii-http
    config:
${http
  .trim()
  .split('\n')
  .map((line) => `      ${line}`)
  .join('\n')}
`;
}

const INITIAL = config(`
default_timeout: 30000
cors: {allowed_origins: ["https://a.example"], allowed_methods: [GET]}
`);

let dir: string;
let node: NodeProcess;
let worker: IIIClient;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-reload-'));
  await writeFile(join(dir, 'config.yaml'), INITIAL);
  node = await startNodeProcess({
    nodeId: 'reload',
    cwd: dir,
    args: ['--config', 'config.yaml'],
    env: { LOG_LEVEL: 'info' },
  });
  worker = registerWorker(node.url, {
    workerName: 'reload-app',
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  worker.registerFunction('app::slow', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return { status_code: 200, body: { ok: true } };
  });
  worker.registerFunction('app::hello', async () => ({ status_code: 200, body: { hello: true } }));
  worker.registerTrigger({ type: 'http', function_id: 'app::slow', config: { api_path: '/slow', http_method: 'GET' } });
  worker.registerTrigger({
    type: 'http',
    function_id: 'app::hello',
    config: { api_path: '/hello', http_method: 'GET' },
  });
  await waitFor(async () => (await get('/hello', 'https://a.example')).status === 200, 'the routes', 10_000);
});
afterEach(async () => {
  await worker.shutdown().catch(() => undefined);
  await node.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function get(path: string, origin: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${node.httpPort}${path}`, { headers: { origin } });
}

async function allowedOrigin(origin: string): Promise<string | null> {
  return (await get('/hello', origin)).headers.get('access-control-allow-origin');
}

test('an edit of config.yaml applies CORS and the timeout live; a restart-only key says so; an invalid edit changes nothing', async () => {
  expect(await allowedOrigin('https://b.example')).toBeNull();
  expect((await get('/slow', 'https://a.example')).status).toBe(200);

  await writeFile(
    join(dir, 'config.yaml'),
    config(`
default_timeout: 500
concurrency_request_limit: 7
cors: {allowed_origins: ["https://b.example"], allowed_methods: [GET]}
`),
  );
  await waitFor(
    async () => (await allowedOrigin('https://b.example')) === 'https://b.example',
    'the new CORS policy',
    10_000,
  );
  expect(await allowedOrigin('https://a.example')).toBeNull();
  const slow = await get('/slow', 'https://b.example');
  expect(slow.status).toBe(504);
  expect(((await slow.json()) as Any).error.code).toBe('TIMEOUT');
  expect(node.output()).toContain('iii-http: concurrency_request_limit changed; restart the engine to apply it');

  await writeFile(
    join(dir, 'config.yaml'),
    config(`
default_timeout: soon
`),
  );
  await waitFor(() => node.output().includes('the changed configuration is invalid'), 'the refusal', 10_000);
  expect(node.output()).toMatch(/default_timeout/);
  expect(await allowedOrigin('https://b.example')).toBe('https://b.example');
  // The worker never reconnected: its calls still work on the same connection.
  expect((await get('/hello', 'https://b.example')).status).toBe(200);
}, 40_000);

test('configuration::set of a worker settings id validates it as a config.yaml block, stores it in ./config and applies it live', async () => {
  const { configurations } = await call(worker, 'configuration::list', {});
  expect((configurations as Any[]).map((c) => c.id)).toContain('iii-http');
  const bad = await failure(worker, 'configuration::set', { id: 'iii-http', value: { default_timeout: 'soon' } });
  expect(bad.code).toBe('SCHEMA_INVALID');
  expect(bad.message).toMatch(/default_timeout/);
  expect((await failure(worker, 'configuration::register', { id: 'iii-http', name: 'mine', schema: {} })).code).toBe(
    'INVALID_ID',
  );

  const value = { default_timeout: 30000, cors: { allowed_origins: ['https://c.example'], allowed_methods: ['GET'] } };
  await call(worker, 'configuration::set', { id: 'iii-http', value });
  await waitFor(
    async () => (await allowedOrigin('https://c.example')) === 'https://c.example',
    'the CORS policy set through configuration',
    10_000,
  );
  expect(await readFile(join(dir, 'config', 'iii-http.yaml'), 'utf8')).toMatch(/c\.example/);
  expect((await call(worker, 'configuration::get', { id: 'iii-http' })).value).toEqual(value);
}, 40_000);
