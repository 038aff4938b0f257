import type { IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import type { StreamModule } from '../../src/modules/stream';
import { MAX_CLIENT_FRAME_BYTES, MAX_SUBSCRIPTIONS_PER_CLIENT } from '../../src/config/stream-limits';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, type Any } from '../support/calls';

/**
 * The stream client WebSocket port (iii-modules.md §9.4): real `ws` clients against the port,
 * real iii-sdk workers for writes, join/leave handlers and the auth function.
 */

/** A stream client that records every frame it receives. */
class Client {
  readonly frames: Any[] = [];
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString())));
    ws.on('close', (code) => (this.closeCode = code));
  }

  static open(port: number, path = '/', headers: Record<string, string> = {}): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  join(subscriptionId: string, streamName: string, groupId: string, id?: string): void {
    this.send({ type: 'join', data: { subscriptionId, streamName, groupId, ...(id === undefined ? {} : { id }) } });
  }

  leave(subscriptionId: string, streamName: string, groupId: string): void {
    this.send({ type: 'leave', data: { subscriptionId, streamName, groupId } });
  }

  /** Removes and returns the first frame matching `pred`, waiting for it. */
  async take(pred: (frame: Any) => boolean, what: string): Promise<Any> {
    const index = await waitFor(() => {
      const i = this.frames.findIndex(pred);
      return i >= 0 ? i + 1 : undefined;
    }, what);
    return this.frames.splice(index - 1, 1)[0];
  }

  /** The next frame of a stream and, optionally, one event type. */
  event(streamName: string, type?: string): Promise<Any> {
    return this.take(
      (f) => f.type === 'stream' && f.streamName === streamName && (type === undefined || f.event.type === type),
      `${type ?? 'an'} event of ${streamName}`,
    );
  }

  error(): Promise<Any> {
    return this.take((f) => f.type === 'error', 'an error frame');
  }

  close(): void {
    this.ws.terminate();
  }
}

/** The status and body of a refused upgrade. */
function refusedUpgrade(
  port: number,
  path = '/',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', () => undefined);
  });
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

function streamPort(t: TestEngine): number {
  return t.engine.module<StreamModule>('iii-stream')!.port;
}

describe('stream client port', () => {
  let t: TestEngine;
  let w: IIIClient;
  let port: number;
  const clients: Client[] = [];
  const open = async (path?: string) => {
    const c = await Client.open(port, path);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('stream-writer');
    port = streamPort(t);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t.close();
  });

  test('a group join syncs the items as an array, then create, update and delete events follow', async () => {
    await call(w, 'stream::set', { stream_name: 'c-group', group_id: 'room', item_id: 'a', data: { n: 1 } });
    const c = await open();
    c.join('sub-1', 'c-group', 'room');
    const sync = await c.event('c-group', 'sync');
    expect(sync).toEqual({
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'c-group',
      groupId: 'room',
      id: null,
      event: { type: 'sync', data: [{ n: 1 }] },
    });
    await call(w, 'stream::set', { stream_name: 'c-group', group_id: 'room', item_id: 'b', data: { n: 2 } });
    await call(w, 'stream::set', { stream_name: 'c-group', group_id: 'room', item_id: 'a', data: { n: 3 } });
    await call(w, 'stream::delete', { stream_name: 'c-group', group_id: 'room', item_id: 'b' });
    expect(await c.event('c-group')).toMatchObject({ id: 'b', event: { type: 'create', data: { n: 2 } } });
    expect(await c.event('c-group')).toMatchObject({ id: 'a', event: { type: 'update', data: { n: 3 } } });
    expect(await c.event('c-group')).toMatchObject({ id: 'b', event: { type: 'delete', data: { n: 2 } } });
  });

  test('an item join syncs that item (null when absent) and receives only that item', async () => {
    const c = await open();
    c.join('only-x', 'c-item', 'g', 'x');
    expect((await c.event('c-item', 'sync')).event.data).toBeNull();
    await call(w, 'stream::set', { stream_name: 'c-item', group_id: 'g', item_id: 'y', data: 'not mine' });
    await call(w, 'stream::set', { stream_name: 'c-item', group_id: 'other', item_id: 'x', data: 'other group' });
    await call(w, 'stream::set', { stream_name: 'c-item', group_id: 'g', item_id: 'x', data: 'mine' });
    const event = await c.event('c-item');
    // Events reach a client in write order: the others would have arrived first.
    expect(event).toMatchObject({ groupId: 'g', id: 'x', event: { type: 'create', data: 'mine' } });
    c.join('only-x-again', 'c-item', 'g', 'x');
    expect((await c.event('c-item', 'sync')).event.data).toBe('mine');
  });

  test('stream::send reaches the group subscribers as {type:"event", event:{type, data}}', async () => {
    const c = await open();
    c.join('s', 'c-send', 'g');
    await c.event('c-send', 'sync');
    await call(w, 'stream::send', { stream_name: 'c-send', group_id: 'g', type: 'typing', data: { who: 'ann' } });
    expect(await c.event('c-send')).toMatchObject({
      id: null,
      event: { type: 'event', event: { type: 'typing', data: { who: 'ann' } } },
    });
  });

  test('binary frames holding JSON work like text frames; blank frames are ignored', async () => {
    const c = await open();
    c.send('   ');
    c.send(
      Buffer.from(
        JSON.stringify({ type: 'join', data: { subscriptionId: 'b', streamName: 'c-binary', groupId: 'g' } }),
      ),
    );
    expect((await c.event('c-binary', 'sync')).event.data).toEqual([]);
    expect(c.frames.filter((f) => f.type === 'error')).toEqual([]);
  });

  test('two overlapping subscriptions on one connection each get a copy of the event', async () => {
    const c = await open();
    c.join('whole', 'c-dup', 'g');
    c.join('one', 'c-dup', 'g', 'i');
    await c.event('c-dup', 'sync');
    await c.event('c-dup', 'sync');
    await call(w, 'stream::set', { stream_name: 'c-dup', group_id: 'g', item_id: 'i', data: 1 });
    await c.event('c-dup', 'create');
    await c.event('c-dup', 'create');
  });

  test('leave stops the events of that subscription; a leave for an unknown id is ignored', async () => {
    const c = await open();
    c.join('gone', 'c-leave', 'g');
    c.join('stays', 'c-leave-other', 'g');
    await c.event('c-leave', 'sync');
    await c.event('c-leave-other', 'sync');
    c.leave('gone', 'c-leave', 'g');
    c.leave('never-joined', 'c-leave', 'g');
    await waitFor(
      () => t.engine.module<StreamModule>('iii-stream')!.clientStats.subscriptions === 1,
      'the leave to be applied',
    );
    await call(w, 'stream::set', { stream_name: 'c-leave', group_id: 'g', item_id: 'i', data: 1 });
    await call(w, 'stream::set', { stream_name: 'c-leave-other', group_id: 'g', item_id: 'i', data: 2 });
    await c.event('c-leave-other', 'create');
    expect(c.frames).toEqual([]);
  });

  test('malformed frames get an invalid_message error frame and the connection stays usable', async () => {
    const c = await open();
    c.send('{not json');
    expect((await c.error()).error).toEqual({ code: 'invalid_message', message: expect.stringContaining('not JSON') });
    c.send('[1,2]');
    expect((await c.error()).error.message).toContain('not a JSON object');
    c.send({ type: 'subscribe', data: {} });
    expect((await c.error()).error.message).toContain('unknown message type "subscribe"');
    c.send({ type: 'join' });
    expect((await c.error()).error.message).toContain('needs a `data` object');
    c.send({ type: 'join', data: { subscriptionId: 'half', streamName: 'c-bad' } });
    const missing = await c.error();
    expect(missing).toEqual({
      type: 'error',
      subscriptionId: 'half',
      error: { code: 'invalid_message', message: expect.stringContaining('data.groupId must be a non-empty string') },
    });
    c.send({ type: 'join', data: { subscriptionId: 'n', streamName: 'c-bad', groupId: 'g', id: 5 } });
    expect((await c.error()).error.message).toContain('data.id must be a string');
    c.join('good', 'c-bad', 'g');
    expect((await c.event('c-bad', 'sync')).event.data).toEqual([]);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  test(`a frame larger than ${MAX_CLIENT_FRAME_BYTES} bytes closes the socket with 1009; the node keeps serving`, async () => {
    const big = await open();
    big.send({
      type: 'join',
      data: { subscriptionId: 'x'.repeat(MAX_CLIENT_FRAME_BYTES), streamName: 's', groupId: 'g' },
    });
    await waitFor(() => big.closeCode, 'the oversized client to be closed');
    expect(big.closeCode).toBe(1009);
    const fine = await open();
    fine.send({
      type: 'join',
      data: { subscriptionId: 'y'.repeat(MAX_CLIENT_FRAME_BYTES - 200), streamName: 'c-big', groupId: 'g' },
    });
    expect((await fine.event('c-big', 'sync')).event.data).toEqual([]);
  });

  test(`a connection holds at most ${MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions; one more gets a limit_exceeded error frame`, async () => {
    const c = await open();
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_CLIENT; i++) c.join(`s${i}`, 'c-limit', `g${i}`);
    c.join('one-too-many', 'c-limit', 'extra');
    const error = await c.error();
    expect(error.subscriptionId).toBe('one-too-many');
    expect(error.error.code).toBe('limit_exceeded');
    expect(error.error.message).toContain(String(MAX_SUBSCRIPTIONS_PER_CLIENT));
    expect(c.frames.filter((f) => f.type === 'stream' && f.event.type === 'sync')).toHaveLength(
      MAX_SUBSCRIPTIONS_PER_CLIENT,
    );
    // Leaving makes room again.
    c.leave('s0', 'c-limit', 'g0');
    c.join('one-too-many', 'c-limit', 'extra');
    expect((await c.take((f) => f.groupId === 'extra', 'the extra sync')).event.type).toBe('sync');
  });

  test('a client that stops reading is cut off once its send buffer passes the bound; others keep being served', async () => {
    const module = t.engine.module<StreamModule>('iii-stream')!;
    const slow = await open();
    const healthy = await open();
    slow.join('firehose', 'c-slow', 'g');
    healthy.join('calm', 'c-calm', 'g');
    await slow.event('c-slow', 'sync');
    await healthy.event('c-calm', 'sync');
    const before = module.clientStats.clients;
    slow.ws.pause();
    const chunk = 'x'.repeat(1024 * 1024);
    // 8 MiB of backlog plus what the kernel buffers hold; 64 MiB is far past both.
    for (let sent = 0; sent < 64 && module.clientStats.clients === before; sent++) {
      await call(w, 'stream::send', { stream_name: 'c-slow', group_id: 'g', type: 'blob', data: chunk });
    }
    await waitFor(() => module.clientStats.clients === before - 1, 'the slow client to be dropped');
    slow.ws.resume();
    await waitFor(() => slow.closeCode, 'the slow client to see its socket closed');
    await call(w, 'stream::set', { stream_name: 'c-calm', group_id: 'g', item_id: 'i', data: 'still here' });
    expect((await healthy.event('c-calm', 'create')).event.data).toBe('still here');
  });

  test('"/" and "/stream/<stream>/<group>/" are served; another path is refused with 404, a plain HTTP request with 426', async () => {
    for (const path of ['/stream/s', '/stream/s/g/i/extra', '/streams/s/g/', '/elsewhere']) {
      const refused = await refusedUpgrade(port, path);
      expect(refused.status).toBe(404);
      expect(refused.body).toContain('connect to "/" or "/stream/<stream_name>/<group_id>/"');
    }
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(426);
    await res.text();
    const c = await open('/?token=abc');
    c.join('q', 'c-query', 'g');
    await c.event('c-query', 'sync');
  });

  test('a client on "/stream/<stream>/<group>/" is joined to that group at once and may leave it like any subscription', async () => {
    await call(w, 'stream::set', { stream_name: 'c-path', group_id: 'room 1', item_id: 'a', data: { n: 1 } });
    const c = await open('/stream/c-path/room%201/?token=abc');
    const sync = await c.event('c-path', 'sync');
    expect(sync).toMatchObject({ groupId: 'room 1', id: null, event: { type: 'sync', data: [{ n: 1 }] } });
    await call(w, 'stream::set', { stream_name: 'c-path', group_id: 'room 1', item_id: 'b', data: { n: 2 } });
    expect((await c.event('c-path', 'create')).event.data).toEqual({ n: 2 });
    // Other groups are not part of it; more joins work as on "/".
    c.join('other', 'c-path', 'room 2');
    await c.event('c-path', 'sync');
    c.leave('c-path/room 1', 'c-path', 'room 1');
    await call(w, 'stream::set', { stream_name: 'c-path', group_id: 'room 2', item_id: 'x', data: 'two' });
    await call(w, 'stream::set', { stream_name: 'c-path', group_id: 'room 1', item_id: 'c', data: { n: 3 } });
    expect(await c.event('c-path', 'create')).toMatchObject({ groupId: 'room 2', event: { data: 'two' } });
    await call(w, 'stream::set', { stream_name: 'c-path', group_id: 'room 2', item_id: 'y', data: 'three' });
    expect(await c.event('c-path', 'create')).toMatchObject({ groupId: 'room 2', event: { data: 'three' } });
    expect(c.frames.filter((f) => f.groupId === 'room 1')).toEqual([]);
    // The trailing slash is optional.
    const bare = await open('/stream/c-path/room%201');
    expect((await bare.event('c-path', 'sync')).event.data).toHaveLength(3);
  });
});

describe('stream:join and stream:leave', () => {
  let t: TestEngine;
  let w: IIIClient;
  let port: number;
  const clients: Client[] = [];
  const open = async () => {
    const c = await Client.open(port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('stream-membership');
    port = streamPort(t);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t.close();
  });

  test('join and leave handlers get {subscription_id, stream_name, group_id, id, context}; closing leaves every subscription', async () => {
    const joins = await recordTrigger(t, w, 'm::join', 'stream:join', { stream_name: 'm-basic' });
    const leaves = await recordTrigger(t, w, 'm::leave', 'stream:leave', { stream_name: 'm-basic' });
    const c = await open();
    c.join('one', 'm-basic', 'g', 'item');
    c.join('two', 'm-basic', 'g');
    await c.event('m-basic', 'sync');
    await c.event('m-basic', 'sync');
    expect(joins).toEqual([
      { subscription_id: 'one', stream_name: 'm-basic', group_id: 'g', id: 'item', context: null },
      { subscription_id: 'two', stream_name: 'm-basic', group_id: 'g', id: null, context: null },
    ]);
    c.leave('one', 'm-basic', 'g');
    await waitFor(() => leaves.length >= 1, 'the leave handler');
    expect(leaves[0]).toEqual({
      subscription_id: 'one',
      stream_name: 'm-basic',
      group_id: 'g',
      id: 'item',
      context: null,
    });
    c.close();
    await waitFor(() => leaves.length >= 2, 'the leave handler for the close');
    expect(leaves[1]).toMatchObject({ subscription_id: 'two', id: null });
  });

  test('{unauthorized: true} from a join handler sends the unauthorized event and does not subscribe', async () => {
    await recordTrigger(t, w, 'm::deny', 'stream:join', { stream_name: 'm-secret' }, () => ({ unauthorized: true }));
    await recordTrigger(t, w, 'm::allow', 'stream:join', { stream_name: 'm-open' }, () => ({ unauthorized: false }));
    const c = await open();
    c.join('s', 'm-secret', 'g', 'i');
    expect(await c.event('m-secret')).toEqual({
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'm-secret',
      groupId: 'g',
      id: 'i',
      event: { type: 'unauthorized' },
    });
    c.join('o', 'm-open', 'g');
    await c.event('m-open', 'sync');
    await call(w, 'stream::set', { stream_name: 'm-secret', group_id: 'g', item_id: 'i', data: 'hidden' });
    await call(w, 'stream::set', { stream_name: 'm-open', group_id: 'g', item_id: 'i', data: 'visible' });
    await c.event('m-open', 'create');
    expect(c.frames).toEqual([]);
  });

  test('a join handler that fails refuses the subscription', async () => {
    w.registerFunction('m::broken', async () => {
      throw new Error('authorizer down');
    });
    await functionRegistered(t.engine, 'm::broken');
    w.registerTrigger({ type: 'stream:join', function_id: 'm::broken', config: { stream_name: 'm-broken' } });
    await waitFor(
      () => t.engine.registry.triggersOfType('stream:join', 'live').some((b) => b.function_id === 'm::broken'),
      'the join binding',
    );
    const c = await open();
    c.join('s', 'm-broken', 'g');
    expect((await c.event('m-broken')).event).toEqual({ type: 'unauthorized' });
  });

  test('a join trigger with stream_name is not asked about other streams', async () => {
    const joins = await recordTrigger(t, w, 'm::only-a', 'stream:join', { stream_name: 'm-a' });
    const c = await open();
    c.join('b', 'm-b', 'g');
    c.join('a', 'm-a', 'g');
    await c.event('m-b', 'sync');
    await c.event('m-a', 'sync');
    expect(joins.map((j) => j.stream_name)).toEqual(['m-a']);
  });

  test('condition_function_id returning false skips a join handler', async () => {
    w.registerFunction('m::never', async () => false);
    await functionRegistered(t.engine, 'm::never');
    const denied = await recordTrigger(
      t,
      w,
      'm::skipped-deny',
      'stream:join',
      { stream_name: 'm-cond', condition_function_id: 'm::never' },
      () => ({ unauthorized: true }),
    );
    const c = await open();
    c.join('s', 'm-cond', 'g');
    expect((await c.event('m-cond')).event.type).toBe('sync');
    expect(denied).toEqual([]);
  });

  test('a join trigger config with a non-string stream_name is refused', async () => {
    w.registerFunction('m::noop', async () => null);
    await functionRegistered(t.engine, 'm::noop');
    const err = await w
      .trigger({
        function_id: 'engine::register_trigger',
        payload: { trigger_type: 'stream:join', function_id: 'm::noop', config: { stream_name: 3 } },
      })
      .then(
        () => undefined,
        (e: Any) => e,
      );
    expect(err?.code).toBe('trigger_registration_failed');
    expect(err?.message).toContain('stream_name');
  });
});

describe('auth_function', () => {
  let t: TestEngine;
  let w: IIIClient;
  let port: number;
  const authCalls: Any[] = [];

  beforeAll(async () => {
    const base = testConfig();
    const stream = base.modules['stream'];
    t = await startEngine({
      modules: { ...base.modules, stream: { ...stream, config: { ...stream.config, auth_function: 'auth::check' } } },
    });
    port = streamPort(t);
    w = t.worker('stream-auth');
  });
  afterAll(async () => {
    await t.close();
  });

  test('while the auth function is not registered, upgrades are refused with 401 saying why', async () => {
    const refused = await refusedUpgrade(port);
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('auth::check');
    expect(refused.body).toContain('function_not_found');
  });

  test('the auth function gets {headers, path, query_params, addr}; its context reaches join and leave handlers', async () => {
    w.registerFunction('auth::check', async (input: Any) => {
      authCalls.push(input);
      if (input.headers['x-mode'] === 'deny') return false;
      if (input.headers['x-mode'] === 'throw') throw new Error('token service unreachable');
      return { context: { user: input.query_params.user?.[0] ?? 'anonymous' } };
    });
    await functionRegistered(t.engine, 'auth::check');
    const joins = await recordTrigger(t, w, 'auth::on-join', 'stream:join', { stream_name: 'auth-s' });
    const leaves = await recordTrigger(t, w, 'auth::on-leave', 'stream:leave', { stream_name: 'auth-s' });
    const c = await Client.open(port, '/?user=ann&tag=a&tag=b', { 'X-Custom': 'yes' });
    c.join('s', 'auth-s', 'g');
    await c.event('auth-s', 'sync');
    expect(joins[0].context).toEqual({ user: 'ann' });
    c.leave('s', 'auth-s', 'g');
    await waitFor(() => leaves.length >= 1, 'the leave handler');
    expect(leaves[0].context).toEqual({ user: 'ann' });
    const input = authCalls[authCalls.length - 1];
    expect(input.path).toBe('/');
    expect(input.query_params).toEqual({ user: ['ann'], tag: ['a', 'b'] });
    expect(input.headers['x-custom']).toBe('yes');
    expect(input.addr).toMatch(/^(::ffff:)?127\.0\.0\.1:\d+$/);
    c.close();
  });

  test('an auth function returning false, or failing, refuses the upgrade with 401; the port keeps serving', async () => {
    await functionRegistered(t.engine, 'auth::check');
    const denied = await refusedUpgrade(port, '/', { 'x-mode': 'deny' });
    expect(denied.status).toBe(401);
    expect(denied.body).toContain('refused this connection');
    const failed = await refusedUpgrade(port, '/', { 'x-mode': 'throw' });
    expect(failed.status).toBe(401);
    expect(failed.body).toContain('token service unreachable');
    const c = await Client.open(port);
    c.join('s', 'auth-after', 'g');
    await c.event('auth-after', 'sync');
    c.close();
  });
});
