import type { IIIClient } from 'iii-sdk';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { silentLogger } from '../../src/observability/logger';
import type { StreamModule } from '../../src/modules/stream';
import { BridgeStreamStorage } from '../../src/modules/stream/adapters/bridge-storage';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { OtherEngine } from '../support/other-engine';
import { call, failure, type Any } from '../support/calls';

/**
 * The `bridge` adapter of `iii-stream`: this engine (in-process) keeps its stream items on a
 * second iii-cluster engine running as its own process, and mirrors that engine's changes to
 * its own stream clients and `stream` triggers.
 */

/** Each bridged call waits this long for the remote, in ms (the adapter's `timeout_ms`). */
const CALL_TIMEOUT_MS = 1000;
/** How long "nothing more arrives" is watched for, in ms. */
const QUIET_MS = 400;

const other = new OtherEngine();
const locals: TestEngine[] = [];
const clients: Client[] = [];
const storages: BridgeStreamStorage[] = [];
const sockets: Socket[] = [];

/** A raw stream client that records every frame it receives. */
class Client {
  readonly frames: Any[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString())));
  }

  static async open(port: number): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const client = await new Promise<Client>((resolve, reject) => {
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('error', reject);
    });
    clients.push(client);
    return client;
  }

  join(subscriptionId: string, streamName: string, groupId: string): void {
    this.ws.send(JSON.stringify({ type: 'join', data: { subscriptionId, streamName, groupId } }));
  }

  leave(subscriptionId: string, streamName: string, groupId: string): void {
    this.ws.send(JSON.stringify({ type: 'leave', data: { subscriptionId, streamName, groupId } }));
  }

  /** The stream events received so far, of one type (or all but `sync`). */
  events(type?: string): Any[] {
    return this.frames.filter(
      (f) => f.type === 'stream' && (type === undefined ? f.event.type !== 'sync' : f.event.type === type),
    );
  }

  async sync(): Promise<Any> {
    return waitFor(() => this.events('sync')[0], 'the sync');
  }
}

async function bridgedEngine(): Promise<TestEngine> {
  const base = testConfig();
  const stream = base.modules['stream'];
  const adapter = { name: 'bridge', config: { bridge_url: other.url, timeout_ms: CALL_TIMEOUT_MS } };
  const t = await startEngine({
    modules: { ...base.modules, stream: { ...stream, config: { ...stream.config, adapter } } },
  });
  locals.push(t);
  return t;
}

function streamPort(t: TestEngine): number {
  return t.engine.module<StreamModule>('iii-stream')!.port;
}

/** The stream names the remote engine has `stream` bindings for (asked through `worker`). */
async function remoteBoundStreams(worker: IIIClient): Promise<string[]> {
  const { registered_triggers } = await call(worker, 'engine::registered-triggers::list', { trigger_type: 'stream' });
  return (registered_triggers as Any[]).map((row) => row.config.stream_name as string).sort();
}

/** A local `stream` trigger on `streamName` whose handler records its payloads. */
async function localStreamTrigger(
  t: TestEngine,
  worker: IIIClient,
  functionId: string,
  streamName: string,
): Promise<Any[]> {
  const seen: Any[] = [];
  worker.registerFunction(functionId, async (event: Any) => void seen.push(event));
  await functionRegistered(t.engine, functionId);
  worker.registerTrigger({ type: 'stream', function_id: functionId, config: { stream_name: streamName } });
  await waitFor(
    () => t.engine.registry.triggersOfType('stream', 'live').some((b) => b.function_id === functionId),
    `the stream binding of ${functionId}`,
  );
  return seen;
}

beforeEach(async () => {
  await other.pickPort();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const socket of sockets.splice(0)) socket.disconnect();
  await Promise.all(storages.splice(0).map((s) => s.close()));
  await other.stopWorkers();
  await Promise.all(locals.splice(0).map((t) => t.close()));
  await other.kill();
});

test('stream::* through the local engine is served by the other engine, both ways', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const t = await bridgedEngine();
  const lw = t.worker('local-app');
  const item = { stream_name: 'docs', group_id: 'g1', item_id: 'a' };

  expect(await call(lw, 'stream::set', { ...item, data: { v: 1 } })).toEqual({ old_value: null, new_value: { v: 1 } });
  expect(await call(rw, 'stream::get', item)).toEqual({ v: 1 });
  await call(rw, 'stream::set', { ...item, data: { v: 2 } });
  expect(await call(lw, 'stream::get', item)).toEqual({ v: 2 });
  expect(await call(lw, 'stream::get', { ...item, item_id: 'missing' })).toBeUndefined();
  expect(await call(lw, 'stream::update', { ...item, ops: [{ type: 'increment', path: 'v', by: 3 }] })).toEqual({
    old_value: { v: 2 },
    new_value: { v: 5 },
  });
  expect(await call(rw, 'stream::get', item)).toEqual({ v: 5 });
  await call(lw, 'stream::set', { ...item, group_id: 'g2', data: 'other' });
  expect(await call(lw, 'stream::list', { stream_name: 'docs', group_id: 'g1' })).toEqual([{ v: 5 }]);
  expect(await call(lw, 'stream::list_groups', { stream_name: 'docs' })).toEqual(['g1', 'g2']);
  expect(await call(lw, 'stream::list_all', {})).toEqual({ stream: [{ id: 'docs', groups: ['g1', 'g2'] }], count: 1 });
  expect(await call(lw, 'stream::delete', item)).toEqual({ old_value: { v: 5 } });
  expect(await call(rw, 'stream::get', item)).toBeUndefined();
  expect(await call(rw, 'stream::list_groups', { stream_name: 'docs' })).toEqual(['g2']);
}, 30_000);

test('a change made on the other engine reaches a client of the local stream port and fires a local stream trigger, once each', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  await call(rw, 'stream::set', { stream_name: 'rooms', group_id: 'lobby', item_id: 'old', data: { n: 0 } });
  const t = await bridgedEngine();
  const lw = t.worker('local-app');
  const fired = await localStreamTrigger(t, lw, 'local::on-rooms', 'rooms');

  const client = await Client.open(streamPort(t));
  client.join('s1', 'rooms', 'lobby');
  // The sync is read from the other engine, after the mirror binding is in place there.
  expect((await client.sync()).event.data).toEqual([{ n: 0 }]);
  expect(await remoteBoundStreams(rw)).toEqual(['rooms']);

  await call(rw, 'stream::set', { stream_name: 'rooms', group_id: 'lobby', item_id: 'x', data: { n: 1 } });
  await call(rw, 'stream::send', { stream_name: 'rooms', group_id: 'lobby', type: 'ping', data: { at: 1 } });
  await call(rw, 'stream::set', { stream_name: 'elsewhere', group_id: 'lobby', item_id: 'x', data: 'not followed' });
  await waitFor(
    () => client.events().length >= 2 && fired.length >= 2,
    'two mirrored changes at the client and the trigger',
  );
  await sleep(QUIET_MS);

  expect(client.events()).toEqual([
    {
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'rooms',
      groupId: 'lobby',
      id: 'x',
      event: { type: 'create', data: { n: 1 } },
    },
    {
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'rooms',
      groupId: 'lobby',
      id: null,
      event: { type: 'event', event: { type: 'ping', data: { at: 1 } } },
    },
  ]);
  expect(fired.map((e) => [e.type, e.streamName, e.groupId, e.id, e.event.type])).toEqual([
    ['stream', 'rooms', 'lobby', 'x', 'create'],
    ['stream', 'rooms', 'lobby', null, 'event'],
  ]);
}, 30_000);

test("a write through the local engine reaches the local client and the local trigger once, and the other engine's clients too", async () => {
  await other.start();
  other.worker('remote-app');
  const t = await bridgedEngine();
  const lw = t.worker('local-app');
  const fired = await localStreamTrigger(t, lw, 'local::on-chat', 'chat');
  const client = await Client.open(streamPort(t));
  client.join('s1', 'chat', 'room');
  await client.sync();
  const remoteClient = await Client.open(other.node!.streamPort);
  remoteClient.join('r1', 'chat', 'room');
  await remoteClient.sync();

  const item = { stream_name: 'chat', group_id: 'room', item_id: 'm1' };
  await call(lw, 'stream::set', { ...item, data: 'hello' });
  await call(lw, 'stream::update', { ...item, ops: [{ type: 'set', path: '', value: 'hello!' }] });
  await call(lw, 'stream::send', { stream_name: 'chat', group_id: 'room', id: 'm1', type: 'typing', data: null });
  await call(lw, 'stream::delete', item);
  await call(lw, 'stream::delete', item); // deletes nothing: no event
  await waitFor(
    () => client.events().length >= 4 && fired.length >= 4 && remoteClient.events().length >= 4,
    'four changes everywhere',
  );
  await sleep(QUIET_MS);

  const kinds = (events: Any[]) => events.map((e) => [e.id, e.event.type, e.event.data ?? e.event.event]);
  const expected = [
    ['m1', 'create', 'hello'],
    ['m1', 'update', 'hello!'],
    ['m1', 'event', { type: 'typing', data: null }],
    ['m1', 'delete', 'hello!'],
  ];
  expect(kinds(client.events())).toEqual(expected);
  expect(kinds(fired)).toEqual(expected);
  expect(kinds(remoteClient.events())).toEqual(expected);
}, 30_000);

test('a Socket.IO subscriber of the local port is followed too: a change made on the other engine reaches it once', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const t = await bridgedEngine();
  const socket = io(`http://127.0.0.1:${streamPort(t)}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  const events: Any[] = [];
  socket.on('stream', (event: Any) => events.push(event));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  expect(await socket.emitWithAck('join', { subscriptionId: 'io-1', streamName: 'board', groupId: 'g' })).toEqual({
    ok: true,
  });
  expect(await remoteBoundStreams(rw)).toEqual(['board']);

  await call(rw, 'stream::set', { stream_name: 'board', group_id: 'g', item_id: 'card', data: { title: 'x' } });
  await waitFor(() => events.some((e) => e.event.type === 'create'), 'the mirrored change over Socket.IO');
  await sleep(QUIET_MS);
  expect(events.map((e) => [e.streamName, e.id, e.event.type])).toEqual([
    ['board', null, 'sync'],
    ['board', 'card', 'create'],
  ]);
}, 30_000);

test('a local stream trigger alone makes the other engine report its stream; its changes fire it once', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const t = await bridgedEngine();
  const lw = t.worker('local-app');
  const fired = await localStreamTrigger(t, lw, 'local::on-orders', 'orders');
  await waitFor(
    async () => (await remoteBoundStreams(rw)).includes('orders'),
    'the mirror binding of orders on the other engine',
    10_000,
  );

  await call(rw, 'stream::set', { stream_name: 'orders', group_id: 'eu', item_id: 'o1', data: { total: 3 } });
  await waitFor(() => fired.length >= 1, 'the mirrored change');
  await sleep(QUIET_MS);
  expect(fired).toEqual([
    {
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'orders',
      groupId: 'eu',
      id: 'o1',
      event: { type: 'create', data: { total: 3 } },
    },
  ]);
}, 30_000);

test('the other engine going away fails calls with bridge_unavailable by their deadline; after it restarts the mirror resumes', async () => {
  await other.start();
  let rw = other.worker('remote-app');
  const t = await bridgedEngine();
  const lw = t.worker('local-app');
  const fired = await localStreamTrigger(t, lw, 'local::on-live', 'live');
  const client = await Client.open(streamPort(t));
  client.join('s1', 'live', 'g');
  await client.sync();

  await other.stopWorkers();
  await other.kill();
  const started = Date.now();
  const down = await failure(lw, 'stream::set', { stream_name: 'live', group_id: 'g', item_id: 'i', data: 1 });
  expect(Date.now() - started).toBeLessThan(CALL_TIMEOUT_MS + 2000);
  expect(down.code).toBe('STREAM_SET_ERROR');
  expect(down.message).toMatch(/bridge_unavailable/);
  expect(
    (await failure(lw, 'stream::send', { stream_name: 'live', group_id: 'g', type: 't', data: null })).message,
  ).toMatch(/bridge_unavailable/);

  await other.start();
  rw = other.worker('remote-app-2');
  // The bridge reconnects with backoff and binds again what it follows; probe until a change arrives.
  await waitFor(
    async () => {
      await call(rw, 'stream::set', { stream_name: 'live', group_id: 'g', item_id: 'probe', data: Date.now() });
      return client.events().length > 0;
    },
    'the first mirrored change after the restart',
    20_000,
  );
  await waitFor(() => fired.length > 0, 'the trigger fired by the probe');
  await sleep(QUIET_MS);
  const clientBefore = client.events().length;
  const firedBefore = fired.length;

  await call(lw, 'stream::set', { stream_name: 'live', group_id: 'g', item_id: 'after', data: 'back' });
  expect(await call(rw, 'stream::get', { stream_name: 'live', group_id: 'g', item_id: 'after' })).toBe('back');
  await waitFor(
    () => client.events().length > clientBefore && fired.length > firedBefore,
    'the change after the restart',
  );
  await sleep(QUIET_MS);
  expect(
    client
      .events()
      .slice(clientBefore)
      .map((e) => [e.id, e.event.type, e.event.data]),
  ).toEqual([['after', 'create', 'back']]);
  expect(fired.slice(firedBefore).map((e) => [e.id, e.event.type, e.event.data])).toEqual([
    ['after', 'create', 'back'],
  ]);
}, 60_000);

test('a stream nobody follows any more is unbound on the other engine after the linger, and not in between', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const storage = new BridgeStreamStorage({
    url: other.url,
    nodeId: 'linger-test',
    logger: silentLogger,
    timeoutMs: CALL_TIMEOUT_MS,
    unfollowAfterMs: 300,
  });
  storages.push(storage);
  const seen: Any[] = [];
  storage.watch((event) => seen.push(event));
  storage.start();

  storage.follow('a');
  storage.follow('b');
  await waitFor(
    async () => (await remoteBoundStreams(rw)).join() === 'a,b',
    'bindings of a and b on the other engine',
    10_000,
  );
  storage.unfollow('a');
  storage.follow('a'); // back within the linger: still bound, never unbound
  storage.unfollow('b');
  await sleep(600);
  expect(await remoteBoundStreams(rw)).toEqual(['a']);
  expect(storage.boundStreams).toEqual(['a']);

  await call(rw, 'stream::set', { stream_name: 'a', group_id: 'g', item_id: 'i', data: 1 });
  await call(rw, 'stream::set', { stream_name: 'b', group_id: 'g', item_id: 'i', data: 1 });
  await waitFor(() => seen.length >= 1, 'the change of a');
  await sleep(QUIET_MS);
  expect(seen.map((e) => e.streamName)).toEqual(['a']);
}, 30_000);
