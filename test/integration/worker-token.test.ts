import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerWorker, type IIIClient, type InitOptions } from 'iii-sdk';
import type { ChannelReader } from 'iii-sdk/channel';
import { createChannel } from 'iii-sdk/helpers';
import pino from 'pino';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load';
import type { WorkerListenerConfig } from '../../src/config/types';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import type { HttpModule } from '../../src/modules/http';
import { silentLogger } from '../../src/observability/logger';
import { call } from '../support/calls';
import { functionRegistered, testConfig, waitFor } from '../support/engine';
import { RawClient } from '../support/raw-client';
import { startRedis } from '../support/redis';

/**
 * The shared worker token (III_WORKER_TOKEN / auth_token) and protected mode, with real
 * iii-sdk workers and real sockets.
 */

const TOKEN = 'correct horse battery staple';

const engines: Engine[] = [];
const clients: IIIClient[] = [];
const raws: RawClient[] = [];

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close();
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

async function engineWith(
  listener: Partial<WorkerListenerConfig>,
  logger = silentLogger,
  extra: Parameters<typeof testConfig>[0] = {},
): Promise<Engine> {
  const config = testConfig(extra);
  const engine = createEngine({ ...config, listeners: [{ ...config.listeners[0], ...listener }] }, { logger });
  await engine.start();
  engines.push(engine);
  return engine;
}

function worker(url: string, name: string, options: InitOptions = {}): IIIClient {
  const client = registerWorker(url, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
    ...options,
  });
  clients.push(client);
  return client;
}

interface UpgradeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Tries a WebSocket upgrade; 101 once open, else the refusal's status, headers and body. */
function upgrade(url: string, options: WebSocket.ClientOptions = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      resolve({ status: 101, headers: {}, body: '' });
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

function workerCount(engine: Engine): number {
  return [...engine.registry.workers()].filter((w) => w.kind === 'worker').length;
}

/** A non-loopback IPv4 address of this machine, to reach a 0.0.0.0 listener as a "remote" peer. */
function externalAddress(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address: the protected mode tests need one to connect from');
}

describe('the shared worker token', () => {
  it('refuses a missing or wrong token with 401 before the upgrade, and never registers the worker', async () => {
    const engine = await engineWith({ authToken: TOKEN });
    const url = `ws://127.0.0.1:${engine.port}`;
    for (const attempt of [
      {},
      { headers: { authorization: 'Bearer wrong' } },
      { headers: { authorization: `Basic ${TOKEN}` } },
    ]) {
      const answer = await upgrade(url, attempt);
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(answer.body)).toEqual({
        error: { code: 'UNAUTHORIZED', message: expect.stringContaining('requires the worker token') },
      });
    }
    expect((await upgrade(`${url}/?token=wrong`)).status).toBe(401);
    // An SDK worker without the token keeps retrying and never gets in.
    worker(url, 'intruder').registerFunction('intruder::fn', async () => 1);
    const lister = worker(url, 'lister', { headers: { authorization: `Bearer ${TOKEN}` } });
    await waitFor(() => workerCount(engine) === 1, 'the lister to connect');
    const listed = await call(lister, 'engine::workers::list', {});
    expect(listed.workers.map((w: { name: string | null }) => w.name)).not.toContain('intruder');
    expect(engine.registry.pool('intruder::fn')).toHaveLength(0);
    expect(workerCount(engine)).toBe(1);
  });

  it('lets in a worker with the token in the Authorization header or in ?token=, data channels included', async () => {
    const engine = await engineWith({ authToken: TOKEN });
    const url = `ws://127.0.0.1:${engine.port}`;
    const byHeader = worker(url, 'by-header', { headers: { authorization: `Bearer ${TOKEN}` } });
    byHeader.registerFunction('blob::length', async (input: { body: ChannelReader }) => ({
      length: (await input.body.readAll()).length,
    }));
    await functionRegistered(engine, 'blob::length');
    // The SDK appends the channel path to this URL as a string: the engine serves it all the same.
    const byQuery = worker(`${url}?token=${encodeURIComponent(TOKEN)}`, 'by-query');
    const channel = await createChannel(byQuery);
    const length = call(byQuery, 'blob::length', { body: channel.readerRef });
    channel.writer.stream.end(Buffer.alloc(100_000, 7));
    await expect(length).resolves.toEqual({ length: 100_000 });
  });

  it('guards /otel too, but not the data-channel paths', async () => {
    const engine = await engineWith({ authToken: TOKEN });
    const base = `ws://127.0.0.1:${engine.port}`;
    expect((await upgrade(`${base}/otel`)).status).toBe(401);
    expect((await upgrade(`${base}/otel?token=${encodeURIComponent(TOKEN)}`)).status).toBe(101);
    expect((await upgrade(`${base}/otel`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(101);
    const ref = engine.channels.create();
    const channelUrl = `${base}/ws/channels/${ref.writer.channel_id}?key=${encodeURIComponent(ref.writer.access_key)}&dir=write`;
    expect((await upgrade(channelUrl)).status).toBe(101);
  });

  it('comes from III_WORKER_TOKEN for every listener without its own auth_token', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iii-token-')), 'config.yaml');
    fs.writeFileSync(
      file,
      'workers:\n  - name: iii-worker-manager\n  - name: iii-worker-manager\n    config:\n      port: 49135\n      auth_token: own-token\n      protected_mode: false\n',
    );
    const { config } = loadConfig({ path: file, env: { III_WORKER_TOKEN: 'from-env' } });
    expect(config.listeners.map((l) => [l.authToken, l.protectedMode])).toEqual([
      ['from-env', true],
      ['own-token', false],
    ]);
    expect(loadConfig({ path: file, env: {} }).config.listeners[0].authToken).toBeUndefined();
  });

  it('leaves the cluster channel relay working: nodes reach each other on the exempt channel paths', async () => {
    const redis = await startRedis();
    try {
      const cluster = { redisUrl: redis.url, keyPrefix: `t${randomUUID().slice(0, 8)}:` };
      const a = await engineWith({ authToken: TOKEN }, silentLogger, { nodeId: 'node-a', cluster });
      const b = await engineWith({ authToken: TOKEN }, silentLogger, { nodeId: 'node-b', cluster });
      const echo = worker(`ws://127.0.0.1:${b.port}`, 'echo-stream', { headers: { authorization: `Bearer ${TOKEN}` } });
      echo.registerFunction('echo::stream', async (req: { request_body: ChannelReader }) => ({
        status_code: 200,
        body: { got: (await req.request_body.readAll()).toString() },
      }));
      echo.registerTrigger({
        type: 'http',
        function_id: 'echo::stream',
        config: { api_path: '/echo', http_method: 'POST' },
      });
      await waitFor(() => a.registry.triggersOfType('http').length === 1, 'the route mirrored on node a');
      // The request reaches node a, which owns the body channel; the worker on node b reads it through the relay.
      const port = a.module<HttpModule>('iii-http')!.port;
      const response = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'across nodes' });
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: 200,
        body: { got: 'across nodes' },
      });
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
      await Promise.all(engines.splice(0).map((e) => e.stop()));
      await redis.stop();
    }
  });
});

describe('protected mode', () => {
  it('lets only loopback peers into a listener on 0.0.0.0 without a token or auth function, and warns at startup', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const engine = await engineWith({ host: '0.0.0.0' }, logger);
    expect(lines.map((l) => JSON.parse(l).msg)).toContainEqual(
      expect.stringContaining('protected mode accepts loopback peers only'),
    );
    const local = await RawClient.connect(`ws://127.0.0.1:${engine.port}`);
    raws.push(local);
    await local.registered();
    for (const pathName of ['/', '/otel']) {
      const refused = await upgrade(`ws://${externalAddress()}:${engine.port}${pathName}`);
      expect(refused.status).toBe(403);
      const { error } = JSON.parse(refused.body);
      expect(error.code).toBe('FORBIDDEN');
      expect(error.message).toMatch(/protected mode.*III_WORKER_TOKEN.*rbac\.auth_function_id.*protected_mode: false/);
    }
  });

  it('is off with protected_mode: false, or when a token is set', async () => {
    const open = await engineWith({ host: '0.0.0.0', protectedMode: false });
    const remote = await RawClient.connect(`ws://${externalAddress()}:${open.port}`);
    raws.push(remote);
    await remote.registered();
    const guarded = await engineWith({ host: '0.0.0.0', authToken: TOKEN });
    const withToken = await RawClient.connect(`ws://${externalAddress()}:${guarded.port}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    raws.push(withToken);
    await withToken.registered();
  });
});
