import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { call } from '../support/calls';

/**
 * A project folder as iii 0.21+ leaves it after its first boot: config.yaml, plus the
 * configuration store `./config/` holding each worker's real settings (`<worker>.yaml`) and the
 * values workers registered (`<id>.yaml`). The engine boots with the store's settings and serves
 * the store's values.
 */

const CONFIG = `
workers:
  - name: iii-worker-manager
  - name: iii-state
    config:
      adapter: {name: kv, config: {store_method: in_memory}}
`;

/** What iii moved into the store: the state worker on file_based. */
const STORED_STATE = `adapter:
  name: kv
  config:
    store_method: file_based
    file_path: ./data/from-store
`;

let dir: string;
let node: NodeProcess | undefined;
let worker: IIIClient | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-project-'));
  await writeFile(join(dir, 'config.yaml'), CONFIG);
  await mkdir(join(dir, 'config'));
});
afterEach(async () => {
  await worker?.shutdown().catch(() => undefined);
  worker = undefined;
  await node?.kill('SIGKILL');
  node = undefined;
  await rm(dir, { recursive: true, force: true });
});

test('a worker whose settings are in ./config/<name>.yaml boots with them; a value stored there is served', async () => {
  await writeFile(join(dir, 'config', 'iii-state.yaml'), STORED_STATE);
  await writeFile(join(dir, 'config', 'mailer.yaml'), 'smtp_host: mail.internal\nport: 2525\n');
  node = await startNodeProcess({
    nodeId: 'project',
    cwd: dir,
    args: ['--config', 'config.yaml'],
    env: { LOG_LEVEL: 'info' },
  });
  worker = registerWorker(node.url, { workerName: 'mailer', enableMetricsReporting: false, otel: { enabled: false } });

  await call(worker, 'state::set', { scope: 's', key: 'k', value: 1 });
  expect(existsSync(join(dir, 'data', 'from-store', 'iii.lmdb'))).toBe(true);
  expect(node.output()).toContain(`iii-state: settings read from ${resolve(dir, 'config', 'iii-state.yaml')}`);

  const schema = { type: 'object', properties: { smtp_host: { type: 'string' }, port: { type: 'integer' } } };
  const entry = await call(worker, 'configuration::register', { id: 'mailer', name: 'Mailer', schema });
  expect(entry.value).toEqual({ smtp_host: 'mail.internal', port: 2525 });
  expect(await call(worker, 'configuration::get', { id: 'mailer' })).toEqual({
    id: 'mailer',
    value: { smtp_host: 'mail.internal', port: 2525 },
  });
});

test('a stored block that fails its schema stops the boot with the file and the key named', async () => {
  await writeFile(join(dir, 'config', 'iii-state.yaml'), 'adapter: {name: kv}\nsave_interval_ms: soon\n');
  const run = spawnSync(process.execPath, [resolve(__dirname, '../../bin/iii-cluster.js'), '--config', 'config.yaml'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 15_000,
  });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain(join('config', 'iii-state.yaml'));
  expect(run.stderr).toContain('save_interval_ms');
});
