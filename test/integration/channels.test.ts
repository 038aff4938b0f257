import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IIIClient } from 'iii-sdk';
import type { ChannelReader, ChannelWriter, StreamChannelRef } from 'iii-sdk/channel';
import { createChannel } from 'iii-sdk/helpers';
import { WebSocket } from 'ws';
import type { HttpModule } from '../../src/modules/http';
import { rejection } from '../support/calls';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';

interface Refs {
  writer: StreamChannelRef;
  reader: StreamChannelRef;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Splits `data` into pieces of `size` bytes (the last one shorter). */
function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) out.push(data.subarray(offset, offset + size));
  return out;
}

/** Opens a raw channel socket; resolves with the HTTP status of a refused upgrade, or 101 once open. */
function channelUpgradeStatus(t: TestEngine, ref: StreamChannelRef): Promise<number> {
  const url = `${t.url}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=${ref.direction}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

function createRefs(worker: IIIClient, payload: Record<string, unknown> = {}): Promise<Refs> {
  return worker.trigger({ function_id: 'engine::channels::create', payload }) as Promise<Refs>;
}

describe('data channels between iii-sdk workers', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  test('10 MB written through writer.stream arrive intact at a reader ref passed to another worker', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('blob::digest', async (data: { input: ChannelReader }) => {
      const bytes = await data.input.readAll();
      return { sha256: sha256(bytes), length: bytes.length };
    });
    await functionRegistered(t.engine, 'blob::digest');

    const blob = randomBytes(10 * 1024 * 1024);
    const channel = await createChannel(a);
    const digest = a.trigger({ function_id: 'blob::digest', payload: { input: channel.readerRef } }) as Promise<{
      sha256: string;
      length: number;
    }>;
    // Uneven 1 MB + 7 bytes writes: the SDK cuts each into 64 KiB frames, the last one short.
    await pipeline(Readable.from(pieces(blob, 1024 * 1024 + 7)), channel.writer.stream);

    await expect(digest).resolves.toEqual({ sha256: sha256(blob), length: blob.length });
    await waitFor(() => t.engine.channels.size === 0, 'the finished channel to be forgotten');
  });

  test('text messages sent with sendMessage reach onMessage on the reader side, in order', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('text::collect', async (data: { input: ChannelReader }) => {
      const messages: string[] = [];
      data.input.onMessage((msg) => messages.push(msg));
      // onMessage does not connect; reading does, and resolves when the engine closes the reader.
      const binary = await data.input.readAll();
      return { messages, binaryBytes: binary.length };
    });
    await functionRegistered(t.engine, 'text::collect');

    const channel = await createChannel(a);
    const collected = a.trigger({ function_id: 'text::collect', payload: { input: channel.readerRef } });
    const sent = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ type: 'event', seq: i, text: `message ${i} ✓` }),
    );
    for (const msg of sent) channel.writer.sendMessage(msg);
    channel.writer.close();

    await expect(collected).resolves.toEqual({ messages: sent, binaryBytes: 0 });
  });

  test('a writer ref passed to another worker becomes a ChannelWriter; text and binary keep their order', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('reply::stream', async (data: { output: ChannelWriter; count: number }) => {
      for (let i = 0; i < data.count; i++) {
        data.output.sendMessage(`text ${i}`);
        await new Promise<void>((resolve, reject) =>
          data.output.stream.write(Buffer.from([i]), (err) => (err ? reject(err) : resolve())),
        );
      }
      await new Promise<void>((resolve) => data.output.stream.end(resolve));
      return { sent: data.count };
    });
    await functionRegistered(t.engine, 'reply::stream');

    const channel = await createChannel(a);
    const order: string[] = [];
    channel.reader.onMessage((msg) => order.push(msg));
    channel.reader.stream.on('data', (chunk: Buffer) => order.push(`binary ${chunk[0]}`));
    const ended = new Promise<void>((resolve) => channel.reader.stream.on('end', resolve));
    channel.reader.stream.resume();

    await expect(
      a.trigger({ function_id: 'reply::stream', payload: { output: channel.writerRef, count: 5 } }),
    ).resolves.toEqual({ sent: 5 });
    await ended;
    expect(order).toEqual([
      'text 0',
      'binary 0',
      'text 1',
      'binary 1',
      'text 2',
      'binary 2',
      'text 3',
      'binary 3',
      'text 4',
      'binary 4',
    ]);
  });

  test('engine::channels::create returns a write ref and a read ref with the same id and key', async () => {
    const a = t.worker('a');
    const refs = await createRefs(a, { buffer_size: 5000 });
    expect(refs).toEqual({
      writer: { channel_id: expect.any(String), access_key: expect.any(String), direction: 'write' },
      reader: { channel_id: refs.writer.channel_id, access_key: refs.writer.access_key, direction: 'read' },
    });
    expect(refs.writer.channel_id).not.toBe('');
    expect(refs.writer.access_key).not.toBe('');
    expect(t.engine.channels.size).toBe(1);
    // Clamped to the configured maximum; not visible in the refs.
    expect(t.engine.channels.stats(refs.writer.channel_id)?.bufferSize).toBe(1024);

    const other = await createRefs(a);
    expect(other.writer.channel_id).not.toBe(refs.writer.channel_id);
    expect(other.writer.access_key).not.toBe(refs.writer.access_key);
    expect(t.engine.channels.stats(other.writer.channel_id)?.bufferSize).toBe(64);
  });

  test('a small buffer_size bounds what the engine holds while a slow reader catches up', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('blob::slow-digest', async (data: { input: ChannelReader }) => {
      const hash = createHash('sha256');
      let length = 0;
      for await (const chunk of data.input.stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        length += chunk.length;
        await sleep(2);
      }
      return { sha256: hash.digest('hex'), length };
    });
    await functionRegistered(t.engine, 'blob::slow-digest');

    const blob = randomBytes(3 * 1024 * 1024);
    const channel = await createChannel(a, 4);
    const { channel_id } = channel.writerRef;
    expect(t.engine.channels.stats(channel_id)?.bufferSize).toBe(4);

    // Nobody reads yet: the engine takes 4 messages, then stops reading the writer's socket.
    const written = pipeline(Readable.from([blob]), channel.writer.stream);
    const held = await waitFor(() => {
      const stats = t.engine.channels.stats(channel_id);
      return stats?.writerPaused ? stats : undefined;
    }, 'the writer to be paused on a full buffer');
    expect(held).toMatchObject({ buffered: 4, writer: 'open', reader: 'waiting' });
    expect(held.readAheadBytes).toBeLessThanOrEqual(2 * 64 * 1024 + 64 * 1024);

    // Read once now as well: on a loaded machine the channel can close before the first tick.
    let peak = t.engine.channels.stats(channel_id)?.peakBuffered ?? 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, t.engine.channels.stats(channel_id)?.peakBuffered ?? 0);
    }, 5);
    try {
      const digest = a.trigger({ function_id: 'blob::slow-digest', payload: { input: channel.readerRef } });
      await written;
      await expect(digest).resolves.toEqual({ sha256: sha256(blob), length: blob.length });
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBe(4);
  });

  test('a second reader socket for a channel is closed at once; the first keeps the stream', async () => {
    const a = t.worker('a');
    const channel = await createChannel(a);
    const { channel_id } = channel.readerRef;
    const first = channel.reader.readAll();
    await waitFor(() => t.engine.channels.stats(channel_id)?.reader === 'open', 'the first reader to connect');

    const url = `${t.url}/ws/channels/${channel_id}?key=${encodeURIComponent(channel.readerRef.access_key)}&dir=read`;
    const second = new WebSocket(url);
    const received: Buffer[] = [];
    second.on('message', (data: Buffer) => received.push(data));
    const closeCode = await new Promise<number>((resolve, reject) => {
      second.on('close', (code) => resolve(code));
      second.on('error', reject);
    });
    expect(closeCode).toBe(1008);

    channel.writer.stream.end(Buffer.from('payload'));
    await expect(first).resolves.toEqual(Buffer.from('payload'));
    expect(received).toHaveLength(0);
  });

  test('the channel endpoint answers 404 for an unknown channel or a wrong key', async () => {
    const a = t.worker('a');
    const refs = await createRefs(a);
    await expect(
      channelUpgradeStatus(t, { ...refs.reader, channel_id: '00000000-0000-4000-8000-000000000000' }),
    ).resolves.toBe(404);
    await expect(channelUpgradeStatus(t, { ...refs.reader, access_key: 'not-the-key' })).resolves.toBe(404);
  });
});

describe('data channel expiry', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine({ channels: { ...testConfig().channels, ttlMs: 200 } });
  });
  afterEach(async () => {
    await t.close();
  });

  test('a channel nobody connects to is removed after the ttl and its refs stop working', async () => {
    const a = t.worker('a');
    const refs = await createRefs(a);
    expect(t.engine.channels.size).toBe(1);
    await waitFor(() => t.engine.channels.size === 0, 'the unused channel to expire', 3000);
    await expect(channelUpgradeStatus(t, refs.writer)).resolves.toBe(404);
  });

  test('a channel whose two ends connected in time outlives the ttl', async () => {
    const a = t.worker('a');
    const channel = await createChannel(a);
    const messages: string[] = [];
    channel.reader.onMessage((msg) => messages.push(msg));
    const done = channel.reader.readAll();
    channel.writer.sendMessage('first');
    await waitFor(() => messages.length === 1, 'the first message');
    const { channel_id } = channel.writerRef;
    expect(t.engine.channels.stats(channel_id)).toMatchObject({ writer: 'open', reader: 'open' });

    await sleep(600); // three ttls, several sweeps
    expect(t.engine.channels.size).toBe(1);
    channel.writer.sendMessage('late');
    channel.writer.close();
    await done;
    expect(messages).toEqual(['first', 'late']);
    await waitFor(() => t.engine.channels.size === 0, 'the finished channel to be forgotten');
  });
});

describe('engine.channels.max_open (2 here) and max_buffer_bytes (256 KiB here)', () => {
  const maxBufferBytes = 256 * 1024;
  let t: TestEngine;
  let base: string;
  beforeEach(async () => {
    const config = testConfig();
    const http = config.modules.http;
    t = await startEngine({
      channels: { ...config.channels, maxOpen: 2, maxBufferBytes },
      modules: {
        ...config.modules,
        http: { ...http, enabled: true, config: { ...http?.config, port: 0, host: '127.0.0.1' } },
      },
    });
    base = `http://127.0.0.1:${t.engine.module<HttpModule>('iii-http')!.port}`;
  });
  afterEach(async () => {
    await t.close();
  });

  const refusals = async (): Promise<number> =>
    (await t.engine.metrics.limitRefusals.get()).values.find((v) => v.labels.limit === 'engine.channels.max_open')
      ?.value ?? 0;

  /** Sends one message through an SDK channel and reads it to its end: the channel is then over. */
  async function finish(channel: Awaited<ReturnType<typeof createChannel>>): Promise<void> {
    const done = channel.reader.readAll();
    channel.writer.sendMessage('done');
    channel.writer.close();
    await done;
  }

  test('engine::channels::create beyond max_open fails limit_exceeded for the calling worker; a finished channel frees its place', async () => {
    const a = t.worker('a');
    const first = await createChannel(a);
    await createRefs(a);
    const err = await rejection(createRefs(a));
    expect(err.code).toBe('limit_exceeded');
    expect(err.message).toContain('This node holds 2 open data channels (engine.channels.max_open = 2)');
    expect(await refusals()).toBe(1);
    expect(t.engine.channels.size).toBe(2);

    await finish(first);
    await waitFor(() => t.engine.channels.size === 1, 'the finished channel to be forgotten');
    const again = await createRefs(a);
    expect(again.writer.channel_id).toEqual(expect.any(String));
  });

  test('an HTTP trigger request gets 503 SERVER_BUSY while the node holds max_open channels, and is served once they finish', async () => {
    const a = t.worker('a');
    a.registerFunction('web::hello', async () => ({ status_code: 200, body: { hello: 'world' } }));
    a.registerTrigger({ type: 'http', function_id: 'web::hello', config: { api_path: 'hello', http_method: 'GET' } });
    await waitFor(
      () => t.engine.registry.triggersOfType('http', 'live').some((b) => b.function_id === 'web::hello'),
      'the route',
    );

    const held = await createChannel(a);
    // One channel free: the request makes its body channel, is refused the response channel, and gives the first back.
    const refused = await fetch(`${base}/hello`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as { error: { code: string; message: string; error_id: string } };
    expect(body.error.code).toBe('SERVER_BUSY');
    expect(body.error.message).toContain('(engine.channels.max_open = 2)');
    expect(body.error.error_id).toMatch(/^[0-9a-f]{16}$/);
    expect(t.engine.channels.size).toBe(1);

    await finish(held);
    await waitFor(() => t.engine.channels.size === 0, 'the held channel to be forgotten');
    const served = await fetch(`${base}/hello`);
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ hello: 'world' });
  });

  test('an SDK writer is paused once max_buffer_bytes are buffered (well below the 1024-message count); a slow reader gets every byte', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('blob::digest', async (data: { input: ChannelReader }) => {
      const hash = createHash('sha256');
      let length = 0;
      for await (const chunk of data.input.stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        length += chunk.length;
      }
      return { sha256: hash.digest('hex'), length };
    });
    await functionRegistered(t.engine, 'blob::digest');

    const blob = randomBytes(4 * 1024 * 1024);
    const channel = await createChannel(a, 1024);
    const { channel_id } = channel.writerRef;
    // Nobody reads yet: the engine takes max_buffer_bytes, then stops reading the writer's socket.
    const written = pipeline(Readable.from([blob]), channel.writer.stream);
    const held = await waitFor(() => {
      const stats = t.engine.channels.stats(channel_id);
      return stats?.writerPaused ? stats : undefined;
    }, 'the writer to be paused on a full buffer');
    expect(held).toMatchObject({ bufferSize: 1024, writer: 'open', reader: 'waiting' });
    expect(held.bufferedBytes).toBeLessThanOrEqual(maxBufferBytes);
    expect(held.bufferedBytes).toBeGreaterThan(maxBufferBytes / 2);
    expect(held.buffered).toBeLessThan(1024);

    const digest = a.trigger({ function_id: 'blob::digest', payload: { input: channel.readerRef } });
    await written;
    await expect(digest).resolves.toEqual({ sha256: sha256(blob), length: blob.length });
  });
});
