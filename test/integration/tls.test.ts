import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { channelPrefix } from '../../src/cluster/channel-relay';
import { ConfigError, loadConfig } from '../../src/config/load';
import type { EngineConfig, TlsMaterial, TlsVersion } from '../../src/config/types';
import type { HttpModule } from '../../src/modules/http';
import type { StreamModule } from '../../src/modules/stream';
import { readTlsMaterial } from '../../src/config/tls-files';
import type { Any } from '../support/calls';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { startNodeProcess } from '../support/node-process';
import { RawClient } from '../support/raw-client';
import { startRedis, type TestRedis } from '../support/redis';
import { makeCertificates, type TestCertificates } from '../support/tls';

/**
 * TLS on the worker, HTTP and stream listeners: a real iii-sdk worker over wss:// (in a child
 * process started with NODE_EXTRA_CA_CERTS, since the SDK uses Node's default CA store), real
 * https requests, stream clients over wss:// and Socket.IO over https, relayed data channels
 * between two nodes over wss://, the config loader's checks and the engine binary. The jest
 * process itself does not trust the test CA: every client here passes `ca` explicitly.
 */

const WORKER_SCRIPT = path.join(__dirname, '../support/workers/tls-worker.js');
const BIN = path.resolve(__dirname, '../../bin/iii-cluster.js');

let certs: TestCertificates;
const children: ChildProcess[] = [];

beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());

function material(minVersion: TlsVersion = 'TLSv1.2'): TlsMaterial {
  return readTlsMaterial(
    { certFile: certs.certFile, keyFile: certs.keyFile, minVersion },
    { cert: 'test cert', key: 'test key' },
  );
}

/** Config overrides putting every listener (worker, http, stream) on TLS, trusting the test CA for relays. */
function tlsOverrides(extra: Partial<EngineConfig> = {}): Partial<EngineConfig> {
  const tls = material();
  return {
    listeners: testConfig().listeners.map((l) => ({ ...l, tls })),
    tls: { http: tls, stream: tls, ca: certs.ca },
    ...extra,
  };
}

const wssUrl = (t: TestEngine): string => t.url.replace(/^ws:/, 'wss:');
const httpPort = (t: TestEngine): number => t.engine.module<HttpModule>('iii-http')!.port;
const streamPort = (t: TestEngine): number => t.engine.module<StreamModule>('iii-stream')!.port;

/** The SDK worker of test/support/workers/tls-worker.js, connected to `url` (wss://); killed in afterAll. */
function spawnWorker(url: string): ChildProcess {
  const child = spawn(process.execPath, [WORKER_SCRIPT, url], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** Calls a function over a raw wss:// worker socket and returns its result (or error). */
async function rawCall(raw: RawClient, functionId: string, data: unknown): Promise<Any> {
  const invocationId = randomUUID();
  raw.send({ type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data });
  return raw.next((m) => m.type === 'invocationresult' && m['invocation_id'] === invocationId, 10_000);
}

interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function httpsRequest(
  port: number,
  pathname: string,
  options: { method?: string; body?: Buffer; ca?: Buffer | null; maxVersion?: TlsVersion } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method: options.method ?? 'GET',
        agent: false,
        ...(options.ca === null ? {} : { ca: options.ca ?? certs.ca }),
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
        headers: options.body
          ? { 'content-type': 'application/octet-stream', 'content-length': String(options.body.length) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Opens a WebSocket and reports how it ended: open, or the error's message. */
function tryOpen(url: string, options: WebSocket.ClientOptions = {}): Promise<{ opened: boolean; error?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000, ...options });
    ws.once('open', () => {
      ws.terminate();
      resolve({ opened: true });
    });
    ws.once('error', (err) => resolve({ opened: false, error: err.message }));
  });
}

describe('one node with TLS on every listener', () => {
  let t: TestEngine;
  let caller: RawClient;

  beforeAll(async () => {
    t = await startEngine(tlsOverrides());
    spawnWorker(wssUrl(t));
    await functionRegistered(t.engine, 'tls::upload', 1);
    await waitFor(
      () => t.engine.registry.triggersOfType('http').length === 2,
      'both http routes of the worker',
      10_000,
    );
    caller = await RawClient.connect(wssUrl(t), { ca: certs.ca });
  });
  afterAll(async () => {
    caller.close();
    await Promise.all(children.splice(0).map(stopChild));
    await t.close();
  });

  test('an SDK worker connected over wss:// serves a call from a wss:// caller', async () => {
    const reply = await rawCall(caller, 'tls::echo', { n: 42 });
    expect(reply).toMatchObject({ function_id: 'tls::echo', result: { echoed: { n: 42 } } });
  });

  test("an https request reaches the worker's http trigger", async () => {
    const answer = await httpsRequest(httpPort(t), '/hello');
    expect({ status: answer.status, body: JSON.parse(answer.body) }).toEqual({
      status: 200,
      body: { hello: 'over tls' },
    });
  });

  test('a POST body read by the worker and its streamed answer travel over wss:// data channels', async () => {
    const body = Buffer.alloc(256 * 1024, 'x');
    const answer = await httpsRequest(httpPort(t), '/upload', { method: 'POST', body });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/plain');
    expect(answer.body).toBe(`received ${body.length} bytes: ${body.toString()}`);
  });

  test('a stream client over wss:// gets the initial sync and the live events', async () => {
    await rawCall(caller, 'stream::set', { stream_name: 'tls-s', group_id: 'g', item_id: 'a', data: { n: 1 } });
    const ws = new WebSocket(`wss://127.0.0.1:${streamPort(t)}/`, { ca: certs.ca });
    const frames: Any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'join', data: { subscriptionId: 's1', streamName: 'tls-s', groupId: 'g' } }));
    await waitFor(() => frames.find((f) => f.event?.type === 'sync'), 'the sync event');
    await rawCall(caller, 'stream::set', { stream_name: 'tls-s', group_id: 'g', item_id: 'b', data: { n: 2 } });
    const created = await waitFor(() => frames.find((f) => f.event?.type === 'create'), 'the create event');
    expect(created).toMatchObject({ streamName: 'tls-s', groupId: 'g', id: 'b', event: { data: { n: 2 } } });
    expect(frames.find((f) => f.event?.type === 'sync')).toMatchObject({ event: { data: [{ n: 1 }] } });
    ws.close();
  });

  test('a Socket.IO client joins over https (websocket transport)', async () => {
    const socket = io(`https://127.0.0.1:${streamPort(t)}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ca: certs.ca.toString(),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      await expect(
        socket.emitWithAck('join', { subscriptionId: 'sio', streamName: 'tls-s', groupId: 'g' }),
      ).resolves.toEqual({ ok: true });
    } finally {
      socket.disconnect();
    }
  });

  test('a plain ws:// or http:// client, or one that does not trust the certificate, fails the handshake; the listener keeps serving', async () => {
    const port = t.engine.port;
    const plain = await tryOpen(`ws://127.0.0.1:${port}`);
    expect(plain.opened).toBe(false);
    const untrusted = await tryOpen(`wss://127.0.0.1:${port}`);
    expect(untrusted).toEqual({ opened: false, error: expect.stringMatching(/certificate/) });
    await expect(fetch(`http://127.0.0.1:${httpPort(t)}/hello`)).rejects.toThrow();
    expect((await tryOpen(`ws://127.0.0.1:${streamPort(t)}/`)).opened).toBe(false);
    await expect(httpsRequest(httpPort(t), '/hello', { ca: null })).rejects.toThrow(/certificate/);
    // Still serving: the worker, the caller and a new wss:// connection.
    expect(await tryOpen(`wss://127.0.0.1:${port}`, { ca: certs.ca })).toEqual({ opened: true });
    expect(await rawCall(caller, 'tls::echo', 'still here')).toMatchObject({ result: { echoed: 'still here' } });
  });

  test('the metrics port stays plain HTTP (probes)', async () => {
    const response = await fetch(`http://127.0.0.1:${t.engine.metricsPort}/readyz`);
    expect(response.status).toBe(200);
  });
});

test('tls.min_version TLSv1.3 refuses a TLSv1.2 client and serves a TLSv1.3 one', async () => {
  const t = await startEngine({ tls: { http: material('TLSv1.3') } });
  try {
    await expect(httpsRequest(httpPort(t), '/none', { maxVersion: 'TLSv1.2' })).rejects.toThrow(/version|alert/i);
    expect((await httpsRequest(httpPort(t), '/none')).status).toBe(404);
  } finally {
    await t.close();
  }
});

test('a connection that never starts the TLS handshake is closed after handshake_timeout_ms', async () => {
  const tls = material();
  const t = await startEngine({
    listeners: testConfig().listeners.map((l) => ({ ...l, tls, handshakeTimeoutMs: 300 })),
  });
  try {
    const socket = net.connect(t.engine.port, '127.0.0.1');
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    // The default (10 000 ms) would not close it within this wait.
    await waitFor(() => closed, 'the silent connection to be closed', 5000);
  } finally {
    await t.close();
  }
});

describe('the console with TLS', () => {
  const token = 'console-tls-token-0123456789';
  let t: TestEngine;
  beforeAll(async () => {
    const tls = material();
    t = await startEngine(
      tlsOverrides({
        console: { host: '127.0.0.1', port: 0, readOnly: false },
        listeners: testConfig().listeners.map((l) => ({ ...l, tls, authToken: token })),
      }),
    );
  });
  afterAll(async () => {
    await t.close();
  });

  test('serves https:// only, as the other listeners, and signs a browser in with a Secure cookie', async () => {
    const port = t.engine.consolePort!;
    const signIn = await httpsRequest(port, `/?token=${token}`);
    expect(signIn.status).toBe(303);
    expect(String(signIn.headers['set-cookie'])).toMatch(
      /^iii_console=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Secure$/,
    );
    expect((await httpsRequest(port, '/api/call', { method: 'POST' })).status).toBe(401);
    // Plain HTTP on the console port gets no answer: the handshake fails and the socket is closed.
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});

describe('configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-tls-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function load(yaml: string, env: NodeJS.ProcessEnv = {}): EngineConfig {
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, yaml);
    return loadConfig({ path: file, env }).config;
  }

  function loadError(yaml: string, env: NodeJS.ProcessEnv = {}): string {
    try {
      load(yaml, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('the config loaded, expected a ConfigError');
  }

  const tlsYaml = (cert: string, key: string, extra = ''): string =>
    `tls: {cert_file: "${cert}", key_file: "${key}"${extra}}`;

  test('a tls block on a listener is read; listeners without one take III_TLS_CERT_FILE/III_TLS_KEY_FILE', () => {
    // A second copy of the files, so the test can tell which pair each listener got.
    const envCert = path.join(dir, 'env-cert.pem');
    const envKey = path.join(dir, 'env-key.pem');
    fs.copyFileSync(certs.certFile, envCert);
    fs.copyFileSync(certs.keyFile, envKey);
    const config = load(
      [
        'workers:',
        '  - name: iii-worker-manager',
        `    config: {port: 0, ${tlsYaml(certs.certFile, certs.keyFile, ', min_version: TLSv1.3')}}`,
        '  - name: iii-worker-manager',
        '    config: {port: 0}',
        '  - name: iii-http',
        `    config: {${tlsYaml(certs.certFile, certs.keyFile)}}`,
        '  - name: iii-stream',
      ].join('\n'),
      { III_TLS_CERT_FILE: envCert, III_TLS_KEY_FILE: envKey, III_TLS_CA_FILE: certs.caFile },
    );
    expect(config.listeners.map((l) => [l.tls?.certFile, l.tls?.minVersion])).toEqual([
      [certs.certFile, 'TLSv1.3'],
      [envCert, 'TLSv1.2'],
    ]);
    expect(config.tls?.http?.certFile).toBe(certs.certFile);
    expect(config.tls?.stream?.certFile).toBe(envCert);
    expect(config.tls?.stream?.cert.equals(fs.readFileSync(certs.certFile))).toBe(true);
    expect(config.tls?.ca?.equals(certs.ca)).toBe(true);
  });

  test('without tls blocks or variables nothing is TLS', () => {
    const config = load('workers:\n  - name: iii-http\n  - name: iii-stream\n');
    expect(config.listeners[0].tls).toBeUndefined();
    expect(config.tls).toBeUndefined();
  });

  test('a missing certificate file is an error naming the setting and the file', () => {
    const missing = path.join(dir, 'nope.pem');
    const message = loadError(`workers:\n  - name: iii-http\n    config: {${tlsYaml(missing, certs.keyFile)}}\n`);
    expect(message).toBe(
      `${path.join(dir, 'config.yaml')}: iii-http.tls.cert_file: cannot read "${missing}": no such file`,
    );
  });

  test('an unreadable key file (a directory) is an error naming iii-stream.tls.key_file', () => {
    const message = loadError(`workers:\n  - name: iii-stream\n    config: {${tlsYaml(certs.certFile, dir)}}\n`);
    expect(message).toMatch(new RegExp(`iii-stream\\.tls\\.key_file: cannot read "${dir}": it is a directory$`));
  });

  test('a key that does not belong to the certificate is an error naming both files', () => {
    const otherKey = path.join(dir, 'other.key');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    fs.writeFileSync(otherKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const message = loadError(
      `workers:\n  - name: iii-worker-manager\n    config: {${tlsYaml(certs.certFile, otherKey)}}\n`,
    );
    expect(message).toContain(
      `iii-worker-manager.tls.key_file: the private key in "${otherKey}" does not match the certificate in "${certs.certFile}"`,
    );
  });

  test('a file that is not PEM is an error saying what was expected', () => {
    const notPem = path.join(dir, 'cert.txt');
    fs.writeFileSync(notPem, 'hello');
    expect(loadError(`workers:\n  - name: iii-http\n    config: {${tlsYaml(notPem, certs.keyFile)}}\n`)).toMatch(
      /iii-http\.tls\.cert_file: ".*cert\.txt" is not a PEM certificate/,
    );
    expect(loadError(`workers:\n  - name: iii-http\n    config: {${tlsYaml(certs.certFile, notPem)}}\n`)).toMatch(
      /iii-http\.tls\.key_file: ".*cert\.txt" is not a PEM private key/,
    );
  });

  test('III_TLS_CERT_FILE without III_TLS_KEY_FILE is an error', () => {
    expect(loadError('workers: []\n', { III_TLS_CERT_FILE: certs.certFile })).toBe(
      'environment variable III_TLS_CERT_FILE is set but III_TLS_KEY_FILE is not: TLS needs both the certificate and the key file',
    );
  });

  test('a bad file named by a variable is an error naming the variable and the listener', () => {
    const missing = path.join(dir, 'gone.key');
    expect(loadError('workers: []\n', { III_TLS_CERT_FILE: certs.certFile, III_TLS_KEY_FILE: missing })).toBe(
      `environment variable III_TLS_KEY_FILE (iii-worker-manager): cannot read "${missing}": no such file`,
    );
    expect(loadError('workers: []\n', { III_TLS_CA_FILE: missing })).toBe(
      `environment variable III_TLS_CA_FILE: cannot read "${missing}": no such file`,
    );
  });

  test('a tls block without key_file, or with an unknown min_version, is refused by the schema', () => {
    expect(loadError(`workers:\n  - name: iii-http\n    config: {tls: {cert_file: "${certs.certFile}"}}\n`)).toMatch(
      /iii-http\)\.config\.tls\.key_file: expected a non-empty string/,
    );
    expect(
      loadError(
        `workers:\n  - name: iii-http\n    config: {${tlsYaml(certs.certFile, certs.keyFile, ', min_version: TLSv1.0')}}\n`,
      ),
    ).toMatch(/tls\.min_version: expected one of "TLSv1\.2", "TLSv1\.3"/);
  });
});

describe('the engine binary', () => {
  test('serves wss:// and https:// with III_TLS_CERT_FILE and III_TLS_KEY_FILE', async () => {
    const node = await startNodeProcess({
      nodeId: 'tls-bin',
      redisUrl: '', // no cluster
      keyPrefix: 'unused:',
      env: { III_TLS_CERT_FILE: certs.certFile, III_TLS_KEY_FILE: certs.keyFile },
    });
    try {
      const wss = node.url.replace(/^ws:/, 'wss:');
      const raw = await RawClient.connect(wss, { ca: certs.ca });
      await expect(raw.registered()).resolves.toMatchObject({ worker_id: expect.any(String) });
      raw.close();
      expect((await tryOpen(node.url)).opened).toBe(false);
      expect((await httpsRequest(node.httpPort, '/nothing-here')).status).toBe(404);
    } finally {
      await node.kill();
    }
  });

  test('a bad TLS file stops it before it listens: exit 2 and one line naming the variable, no stack', () => {
    const missing = path.join(certs.dir, 'missing.pem');
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-tls-bin-'));
    try {
      const run = spawnSync(process.execPath, [BIN], {
        cwd,
        encoding: 'utf8',
        timeout: 15_000,
        env: {
          ...process.env,
          III_WS_PORT: '0',
          III_HTTP_PORT: '0',
          III_STREAM_PORT: '0',
          III_METRICS_PORT: '0',
          III_TLS_CERT_FILE: missing,
          III_TLS_KEY_FILE: certs.keyFile,
        },
      });
      expect({ status: run.status, stderr: run.stderr }).toEqual({
        status: 2,
        stderr: `iii-cluster: environment variable III_TLS_CERT_FILE (iii-worker-manager): cannot read "${missing}": no such file\n`,
      });
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('two nodes with TLS', () => {
  let redis: TestRedis;
  const nodes: TestEngine[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(children.splice(0).map(stopChild));
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    await redis.stop();
  });

  test('relay a data channel over wss:// when the worker is on one node and the request on the other', async () => {
    const keyPrefix = `tls${randomUUID().slice(0, 8)}:`;
    const [a, b] = await Promise.all(
      ['tls-a', 'tls-b'].map((nodeId) =>
        startEngine(tlsOverrides({ nodeId, cluster: { redisUrl: redis.url, keyPrefix } })),
      ),
    );
    nodes.push(a, b);
    // Nodes advertise wss:// to each other; the relay trusts the CA of `tls.ca` (the jest process
    // does not trust the test CA otherwise, so without it the relay would fail).
    await expect(b.engine.cluster!.ownerUrl(channelPrefix(a.engine.nodeId))).resolves.toBe(
      `wss://127.0.0.1:${a.engine.port}`,
    );
    spawnWorker(wssUrl(b));
    await waitFor(
      () => a.engine.registry.triggersOfType('http').length === 2,
      "the worker's routes mirrored on node a",
      10_000,
    );
    // The request arrives at node a, which makes the channels; the worker reaches them through node b.
    const body = Buffer.from('across nodes, encrypted');
    const answer = await httpsRequest(httpPort(a), '/upload', { method: 'POST', body });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: `received ${body.length} bytes: ${body.toString()}`,
    });
  });

  test('carry calls and results over a wss:// direct bus link (cluster.bus: direct)', async () => {
    const keyPrefix = `tls${randomUUID().slice(0, 8)}:`;
    const [a, b] = await Promise.all(
      ['tls-c', 'tls-d'].map((nodeId) =>
        startEngine(tlsOverrides({ nodeId, cluster: { redisUrl: redis.url, keyPrefix, bus: 'direct' } })),
      ),
    );
    nodes.push(a, b);
    spawnWorker(wssUrl(b));
    await functionRegistered(a.engine, 'tls::echo');
    const caller = await RawClient.connect(wssUrl(a), { ca: certs.ca });
    try {
      // The first call opens the link (over wss://, trusting `tls.ca`); the next ones travel on it.
      for (let n = 0; n < 5; n++)
        expect(await rawCall(caller, 'tls::echo', { n })).toMatchObject({ result: { echoed: { n } } });
      await waitFor(() => a.engine.cluster!.links?.open === 1, 'the wss:// link open');
      const before = a.engine.cluster!.links!.link;
      expect(await rawCall(caller, 'tls::echo', { n: 5 })).toMatchObject({ result: { echoed: { n: 5 } } });
      expect(a.engine.cluster!.links!.link).toBe(before + 1);
    } finally {
      caller.close();
    }
  });
});
