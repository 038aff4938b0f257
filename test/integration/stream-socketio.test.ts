import type { IIIClient } from 'iii-sdk';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import type { StreamModule } from '../../src/modules/stream';
import { MAX_SUBSCRIPTIONS_PER_CLIENT } from '../../src/config/stream-limits';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, type Any } from '../support/calls';

/**
 * Stream subscribers over Socket.IO on the stream port (path /socket.io/): real socket.io-client
 * clients, real iii-sdk workers for writes, join/leave handlers and the auth function.
 */

/** How long a message that should not come would take at most to show up, in ms. */
const QUIET_MS = 200;

/** A Socket.IO stream client that records every `stream` event it receives. */
class SioClient {
  readonly events: Any[] = [];

  constructor(readonly socket: Socket) {
    socket.on('stream', (event: Any) => this.events.push(event));
  }

  /** Connects; websocket only unless `polling` (then engine.io starts on polling and upgrades). */
  static async open(
    port: number,
    options: { query?: Record<string, string>; headers?: Record<string, string>; polling?: boolean } = {},
  ): Promise<SioClient> {
    const socket = SioClient.socket(port, options);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return new SioClient(socket);
  }

  /** A socket that is connecting, for tests of a refused handshake. */
  static socket(
    port: number,
    options: { query?: Record<string, string>; headers?: Record<string, string>; polling?: boolean } = {},
  ): Socket {
    return io(`http://127.0.0.1:${port}`, {
      transports: options.polling ? ['polling', 'websocket'] : ['websocket'],
      reconnection: false,
      forceNew: true,
      query: options.query,
      extraHeaders: options.headers,
    });
  }

  join(subscriptionId: string, streamName: string, groupId: string, id?: string): Promise<Any> {
    return this.socket.emitWithAck('join', {
      subscriptionId,
      streamName,
      groupId,
      ...(id === undefined ? {} : { id }),
    });
  }

  leave(subscriptionId: string): Promise<Any> {
    return this.socket.emitWithAck('leave', { subscriptionId });
  }

  /** Removes and returns the first event matching `pred`, waiting for it. */
  async take(pred: (event: Any) => boolean, what: string): Promise<Any> {
    const index = await waitFor(() => {
      const i = this.events.findIndex(pred);
      return i >= 0 ? i + 1 : undefined;
    }, what);
    return this.events.splice(index - 1, 1)[0];
  }

  /** The next event of a stream and, optionally, one event type. */
  event(streamName: string, type?: string): Promise<Any> {
    return this.take(
      (e) => e.streamName === streamName && (type === undefined || e.event.type === type),
      `${type ?? 'an'} event of ${streamName}`,
    );
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** Registers a handler recording its payloads (answering with `answer`) behind a trigger of `type`. */
async function recordTrigger(
  t: TestEngine,
  w: IIIClient,
  functionId: string,
  type: string,
  config: unknown,
  answer: (payload: Any) => unknown = () => null,
): Promise<Any[]> {
  const seen: Any[] = [];
  w.registerFunction(functionId, async (payload: Any) => {
    seen.push(payload);
    return answer(payload);
  });
  await functionRegistered(t.engine, functionId);
  w.registerTrigger({ type, function_id: functionId, config });
  await waitFor(
    () => t.engine.registry.triggersOfType(type, 'live').some((b) => b.function_id === functionId),
    `${type} trigger for ${functionId}`,
  );
  return seen;
}

function streamModule(t: TestEngine): StreamModule {
  return t.engine.module<StreamModule>('iii-stream')!;
}

describe('stream subscribers over Socket.IO', () => {
  let t: TestEngine;
  let w: IIIClient;
  let port: number;
  const clients: SioClient[] = [];
  const open = async (options?: { polling?: boolean }) => {
    const c = await SioClient.open(port, options);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('sio-writer');
    port = streamModule(t).port;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t.close();
  });

  test('join acks {ok:true} after the sync; create, update, delete follow; after leave nothing more arrives', async () => {
    const joins = await recordTrigger(t, w, 'sio::join', 'stream:join', { stream_name: 'sio-group' });
    const leaves = await recordTrigger(t, w, 'sio::leave', 'stream:leave', { stream_name: 'sio-group' });
    await call(w, 'stream::set', { stream_name: 'sio-group', group_id: 'room', item_id: 'a', data: { n: 1 } });
    const c = await open();
    expect(await c.join('sub-1', 'sio-group', 'room')).toEqual({ ok: true });
    // The sync was emitted before the ack, so it is already here.
    expect(c.events.shift()).toEqual({
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'sio-group',
      groupId: 'room',
      id: null,
      event: { type: 'sync', data: [{ n: 1 }] },
    });
    expect(joins).toEqual([
      { subscription_id: 'sub-1', stream_name: 'sio-group', group_id: 'room', id: null, context: null },
    ]);
    await call(w, 'stream::set', { stream_name: 'sio-group', group_id: 'room', item_id: 'b', data: { n: 2 } });
    await call(w, 'stream::set', { stream_name: 'sio-group', group_id: 'room', item_id: 'a', data: { n: 3 } });
    await call(w, 'stream::delete', { stream_name: 'sio-group', group_id: 'room', item_id: 'b' });
    expect(await c.event('sio-group')).toMatchObject({ id: 'b', event: { type: 'create', data: { n: 2 } } });
    expect(await c.event('sio-group')).toMatchObject({ id: 'a', event: { type: 'update', data: { n: 3 } } });
    expect(await c.event('sio-group')).toMatchObject({ id: 'b', event: { type: 'delete', data: { n: 2 } } });
    expect(await c.leave('sub-1')).toEqual({ ok: true });
    await waitFor(() => leaves.length >= 1, 'the leave handler');
    expect(leaves[0]).toEqual({
      subscription_id: 'sub-1',
      stream_name: 'sio-group',
      group_id: 'room',
      id: null,
      context: null,
    });
    await call(w, 'stream::set', { stream_name: 'sio-group', group_id: 'room', item_id: 'c', data: 'after leave' });
    await sleep(QUIET_MS);
    expect(c.events).toEqual([]);
  });

  test('an item join syncs and receives only that item; a group-wide send reaches group subscribers only', async () => {
    const item = await open();
    const group = await open();
    expect(await item.join('x', 'sio-item', 'g', 'x')).toEqual({ ok: true });
    expect(await group.join('all', 'sio-item', 'g')).toEqual({ ok: true });
    expect((await item.event('sio-item', 'sync')).event.data).toBeNull();
    await group.event('sio-item', 'sync');
    await call(w, 'stream::set', { stream_name: 'sio-item', group_id: 'g', item_id: 'y', data: 'not x' });
    await call(w, 'stream::set', { stream_name: 'sio-item', group_id: 'other', item_id: 'x', data: 'other group' });
    await call(w, 'stream::send', { stream_name: 'sio-item', group_id: 'g', type: 'typing', data: { who: 'ann' } });
    await call(w, 'stream::set', { stream_name: 'sio-item', group_id: 'g', item_id: 'x', data: 'mine' });
    // Events reach a client in write order: the others would have arrived first.
    expect(await item.event('sio-item')).toMatchObject({
      groupId: 'g',
      id: 'x',
      event: { type: 'create', data: 'mine' },
    });
    expect(await group.event('sio-item')).toMatchObject({ id: 'y', event: { type: 'create' } });
    expect(await group.event('sio-item')).toMatchObject({
      id: null,
      event: { type: 'event', event: { type: 'typing', data: { who: 'ann' } } },
    });
    expect(await group.event('sio-item')).toMatchObject({ id: 'x', event: { type: 'create', data: 'mine' } });
  });

  test('a socket with overlapping subscriptions gets each event once, and keeps it until the last of them leaves', async () => {
    const c = await open();
    await c.join('whole', 'sio-dup', 'g');
    await c.join('one', 'sio-dup', 'g', 'i');
    await c.join('whole-again', 'sio-dup', 'g');
    c.events.splice(0);
    await call(w, 'stream::set', { stream_name: 'sio-dup', group_id: 'g', item_id: 'i', data: 1 });
    await c.event('sio-dup', 'create');
    await c.leave('whole');
    await call(w, 'stream::set', { stream_name: 'sio-dup', group_id: 'g', item_id: 'j', data: 2 });
    expect((await c.event('sio-dup', 'create')).id).toBe('j');
    await c.leave('whole-again');
    await call(w, 'stream::set', { stream_name: 'sio-dup', group_id: 'g', item_id: 'k', data: 3 });
    await call(w, 'stream::set', { stream_name: 'sio-dup', group_id: 'g', item_id: 'i', data: 4 });
    expect(await c.event('sio-dup')).toMatchObject({ id: 'i', event: { type: 'update', data: 4 } });
    await sleep(QUIET_MS);
    expect(c.events).toEqual([]);
  });

  test('a stream or group name holding "/" does not leak into another subscription', async () => {
    const c = await open();
    await c.join('slash', 'a/b', 'c');
    c.events.splice(0);
    await call(w, 'stream::set', { stream_name: 'a', group_id: 'b/c', item_id: 'i', data: 'elsewhere' });
    await call(w, 'stream::set', { stream_name: 'a/b', group_id: 'c', item_id: 'i', data: 'here' });
    expect((await c.event('a/b', 'create')).event.data).toBe('here');
    expect(c.events).toEqual([]);
  });

  test('malformed join and leave payloads get an invalid_message ack; the connection stays usable', async () => {
    const c = await open();
    const invalid = (message: string) => ({
      ok: false,
      error: { code: 'invalid_message', message: expect.stringContaining(message) },
    });
    expect(await c.socket.emitWithAck('join')).toEqual(invalid('join needs a payload object'));
    expect(await c.socket.emitWithAck('join', 'room')).toEqual(invalid('join needs a payload object'));
    expect(await c.socket.emitWithAck('join', [1, 2])).toEqual(invalid('join needs a payload object'));
    expect(await c.socket.emitWithAck('join', { subscriptionId: 'half', streamName: 'sio-bad' })).toEqual(
      invalid('data.groupId must be a non-empty string'),
    );
    expect(
      await c.socket.emitWithAck('join', { subscriptionId: 'n', streamName: 'sio-bad', groupId: 'g', id: 5 }),
    ).toEqual(invalid('data.id must be a string'));
    expect(await c.socket.emitWithAck('leave', {})).toEqual(invalid('leave needs a payload object {subscriptionId}'));
    // Without an ack callback a bad payload is dropped quietly.
    c.socket.emit('join', 42);
    expect(await c.leave('never-joined')).toEqual({ ok: true });
    expect(await c.join('good', 'sio-bad', 'g')).toEqual({ ok: true });
    expect((await c.event('sio-bad', 'sync')).event.data).toEqual([]);
    expect(c.socket.connected).toBe(true);
    expect(c.events).toEqual([]);
  });

  test('a join refused by a stream:join handler acks FORBIDDEN, sends the unauthorized event and does not subscribe', async () => {
    await recordTrigger(t, w, 'sio::deny', 'stream:join', { stream_name: 'sio-secret' }, () => ({
      unauthorized: true,
    }));
    const c = await open();
    expect(await c.join('s', 'sio-secret', 'g', 'i')).toEqual({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringContaining('refused subscription s') },
    });
    expect(c.events).toEqual([
      {
        type: 'stream',
        timestamp: expect.any(Number),
        streamName: 'sio-secret',
        groupId: 'g',
        id: 'i',
        event: { type: 'unauthorized' },
      },
    ]);
    c.events.splice(0);
    await call(w, 'stream::set', { stream_name: 'sio-secret', group_id: 'g', item_id: 'i', data: 'hidden' });
    await sleep(QUIET_MS);
    expect(c.events).toEqual([]);
    expect(streamModule(t).clientStats.subscriptions).toBe(0);
  });

  test(`a connection holds at most ${MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions; one more acks limit_exceeded`, async () => {
    const c = await open();
    const acks = await Promise.all(
      Array.from({ length: MAX_SUBSCRIPTIONS_PER_CLIENT }, (_, i) => c.join(`s${i}`, 'sio-limit', `g${i}`)),
    );
    expect(acks.every((a) => a.ok === true)).toBe(true);
    const refused = await c.join('one-too-many', 'sio-limit', 'extra');
    expect(refused).toEqual({
      ok: false,
      error: { code: 'limit_exceeded', message: expect.stringContaining(String(MAX_SUBSCRIPTIONS_PER_CLIENT)) },
    });
    // Joining again under an id already held is a replacement, not one more.
    expect(await c.join('s1', 'sio-limit', 'g1')).toEqual({ ok: true });
    await c.leave('s0');
    expect(await c.join('one-too-many', 'sio-limit', 'extra')).toEqual({ ok: true });
  });

  test('disconnecting leaves every subscription, one leave handler call each', async () => {
    const leaves = await recordTrigger(t, w, 'sio::bye', 'stream:leave', { stream_name: 'sio-bye' });
    const c = await open();
    await c.join('one', 'sio-bye', 'g', 'i');
    await c.join('two', 'sio-bye', 'h');
    c.close();
    await waitFor(() => leaves.length >= 2, 'both leave handlers');
    expect(leaves.map((l) => [l.subscription_id, l.group_id, l.id]).sort()).toEqual([
      ['one', 'g', 'i'],
      ['two', 'h', null],
    ]);
  });

  test('a Socket.IO client that stops reading is cut off once its unsent backlog passes the bound; others keep being served', async () => {
    const module = streamModule(t);
    const slow = await open();
    const healthy = await open();
    await slow.join('firehose', 'sio-slow', 'g');
    await healthy.join('calm', 'sio-calm', 'g');
    const before = module.clientStats.clients;
    const disconnected = new Promise((resolve) => slow.socket.once('disconnect', resolve));
    // The client's own ws socket stops reading: the server's writes back up.
    const ws = (slow.socket.io.engine.transport as Any).ws as WebSocket;
    ws.pause();
    const chunk = 'x'.repeat(1024 * 1024);
    // 8 MiB of backlog plus what the kernel buffers hold; 64 MiB is far past both.
    for (let sent = 0; sent < 64 && module.clientStats.clients === before; sent++) {
      await call(w, 'stream::send', { stream_name: 'sio-slow', group_id: 'g', type: 'blob', data: chunk });
    }
    await waitFor(() => module.clientStats.clients === before - 1, 'the slow client to be dropped');
    ws.resume();
    await disconnected;
    await call(w, 'stream::set', { stream_name: 'sio-calm', group_id: 'g', item_id: 'i', data: 'still here' });
    expect((await healthy.event('sio-calm', 'create')).event.data).toBe('still here');
  });

  test('raw WebSocket clients on "/" and Socket.IO clients (polling upgraded to websocket) are served side by side', async () => {
    const sio = await open({ polling: true });
    await sio.join('s', 'sio-both', 'g');
    const raw = new WebSocket(`ws://127.0.0.1:${port}/`);
    const frames: Any[] = [];
    raw.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      raw.once('open', resolve);
      raw.once('error', reject);
    });
    try {
      raw.send(JSON.stringify({ type: 'join', data: { subscriptionId: 'r', streamName: 'sio-both', groupId: 'g' } }));
      await waitFor(() => frames.some((f) => f.event?.type === 'sync'), 'the raw sync');
      expect(streamModule(t).clientStats).toEqual({ clients: 2, subscriptions: 2 });
      await call(w, 'stream::set', { stream_name: 'sio-both', group_id: 'g', item_id: 'i', data: 'both' });
      const fromSio = await sio.event('sio-both', 'create');
      await waitFor(() => frames.some((f) => f.event?.type === 'create'), 'the raw create');
      expect(frames.find((f) => f.event?.type === 'create')).toEqual(fromSio);
      await waitFor(() => sio.socket.io.engine.transport.name === 'websocket', 'the polling client to upgrade');
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(426);
      expect(await res.text()).toContain('/socket.io/');
    } finally {
      raw.terminate();
    }
  });
});

describe('Socket.IO and auth_function', () => {
  let t: TestEngine;
  let w: IIIClient;
  let port: number;

  beforeAll(async () => {
    const base = testConfig();
    const stream = base.modules['stream'];
    t = await startEngine({
      modules: {
        ...base.modules,
        stream: { ...stream, config: { ...stream.config, auth_function: 'sio-auth::check' } },
      },
    });
    port = streamModule(t).port;
    w = t.worker('sio-auth');
    w.registerFunction('sio-auth::check', async (input: Any) => {
      if (input.headers['x-mode'] === 'deny') return false;
      if (input.headers['x-mode'] === 'throw') throw new Error('token service unreachable');
      return { context: { user: input.query_params.user?.[0] ?? 'anonymous', path: input.path, addr: input.addr } };
    });
    await functionRegistered(t.engine, 'sio-auth::check');
  });
  afterAll(async () => {
    await t.close();
  });

  /** The connect_error of a handshake the server refuses. */
  function refused(headers: Record<string, string>): Promise<Any> {
    const socket = SioClient.socket(port, { headers });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        socket.disconnect();
        reject(new Error('the handshake was accepted'));
      });
      socket.once('connect_error', (err: Any) => {
        socket.disconnect();
        resolve(err);
      });
    });
  }

  test('the auth function sees the handshake; its context reaches the join handler', async () => {
    const joins = await recordTrigger(t, w, 'sio-auth::on-join', 'stream:join', { stream_name: 'sio-auth' });
    const c = await SioClient.open(port, { query: { user: 'ann' } });
    try {
      expect(await c.join('s', 'sio-auth', 'g')).toEqual({ ok: true });
      expect(joins[0].context).toEqual({
        user: 'ann',
        path: '/socket.io/',
        addr: expect.stringMatching(/^(::ffff:)?127\.0\.0\.1:\d+$/),
      });
    } finally {
      c.close();
    }
  });

  test('an auth function returning false, or failing, refuses the handshake with AUTH_ERROR saying why', async () => {
    const denied = await refused({ 'x-mode': 'deny' });
    expect(denied.message).toContain('refused this connection');
    expect(denied.data).toEqual({ code: 'AUTH_ERROR', message: denied.message });
    const failed = await refused({ 'x-mode': 'throw' });
    expect(failed.data.code).toBe('AUTH_ERROR');
    expect(failed.message).toContain('token service unreachable');
    const c = await SioClient.open(port);
    expect(await c.join('s', 'sio-after', 'g')).toEqual({ ok: true });
    c.close();
  });
});

describe('Socket.IO and engine shutdown', () => {
  test('stopping the engine disconnects Socket.IO clients at once, without leave handlers', async () => {
    const t = await startEngine();
    const w = t.worker('sio-stop');
    const leaves = await recordTrigger(t, w, 'sio-stop::leave', 'stream:leave', {});
    const c = await SioClient.open(streamModule(t).port);
    await c.join('s', 'sio-stop', 'g');
    const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    // The engine alone: its worker, which would record a leave, stays connected until then.
    await t.engine.stop();
    expect(await disconnected).toBe('transport close');
    await sleep(QUIET_MS);
    expect(leaves).toEqual([]);
    await t.close();
  });
});
