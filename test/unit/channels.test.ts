import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import {
  ChannelClose,
  ChannelManager,
  type ChannelCloseKind,
  type ChannelOptions,
  type LocalReaderHandlers,
} from '../../src/transport/channels';
import { EngineError } from '../../src/protocol/errors';
import type { ChannelRef } from '../../src/protocol/messages';

/** A real HTTP server whose upgrades go to the manager, as on a worker port. */
interface Harness {
  manager: ChannelManager;
  server: http.Server;
  base: string;
}

interface Item {
  data: Buffer;
  binary: boolean;
}

interface Client {
  ws: WebSocket;
  items: Item[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

let harness: Harness | undefined;
const clients: WebSocket[] = [];

async function start(opts: Partial<ChannelOptions> = {}): Promise<Harness> {
  const manager = new ChannelManager(opts);
  const server = http.createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  server.on('upgrade', (req, socket, head) => {
    if (!manager.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  harness = { manager, server, base: `ws://127.0.0.1:${port}` };
  return harness;
}

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  if (!harness) return;
  const { manager, server } = harness;
  harness = undefined;
  manager.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function urlOf(h: Harness, ref: ChannelRef): string {
  return `${h.base}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=${ref.direction}`;
}

/** Opens a raw ws client and records every message and the close, from the first byte on. */
function connect(url: string): Client {
  const ws = new WebSocket(url);
  clients.push(ws);
  const items: Item[] = [];
  ws.on('message', (data, isBinary) => items.push({ data: data as Buffer, binary: isBinary }));
  ws.on('error', () => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return { ws, items, opened, closed };
}

/** The HTTP answer to an upgrade request the server refuses. */
function refusal(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    clients.push(ws);
    ws.on('error', () => undefined);
    ws.once('open', () => reject(new Error('upgrade was accepted')));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function sha256(parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('ChannelManager', () => {
  test('create returns a writer and a reader ref sharing one channel id and access key', async () => {
    const { manager } = await start();
    const { writer, reader } = manager.create();
    expect(writer).toEqual({ channel_id: reader.channel_id, access_key: reader.access_key, direction: 'write' });
    expect(reader.direction).toBe('read');
    expect(writer.channel_id).toMatch(UUID);
    expect(writer.access_key).toMatch(UUID);
    expect(writer.access_key).not.toBe(writer.channel_id);
    expect(manager.create().writer.channel_id).not.toBe(writer.channel_id);
    expect(manager.size).toBe(2);
  });

  test('buffer_size defaults to 64 and is clamped to 1..maxBufferMessages', async () => {
    const { manager } = await start();
    const sizeOf = (requested?: number) => manager.stats(manager.create(requested).writer.channel_id)?.bufferSize;
    expect(sizeOf()).toBe(64);
    expect(sizeOf(0)).toBe(1);
    expect(sizeOf(-5)).toBe(1);
    expect(sizeOf(7.9)).toBe(7);
    expect(sizeOf(5000)).toBe(1024);
    expect(sizeOf(Number.NaN)).toBe(64);
  });

  test('interleaved text and binary messages arrive in order with their kind, then Close 1000', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const r = connect(urlOf(h, reader));
    const w = connect(urlOf(h, writer));
    await Promise.all([r.opened, w.opened]);
    const sent: Item[] = [
      { data: Buffer.from('{"type":"set_status","status_code":201}'), binary: false },
      { data: Buffer.from([0, 1, 2, 255]), binary: true },
      { data: Buffer.from('second text'), binary: false },
      { data: Buffer.from('text-looking bytes'), binary: true },
      { data: Buffer.alloc(0), binary: true },
      { data: Buffer.from(''), binary: false },
    ];
    for (const item of sent) w.ws.send(item.data, { binary: item.binary });
    w.ws.close(1000, 'stream_complete');
    expect(await r.closed).toEqual({ code: 1000, reason: '' });
    expect(r.items).toEqual(sent);
    await waitFor(() => h.manager.size === 0);
  });

  test('a reader that connects after the writer finished still gets everything, then Close 1000', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const w = connect(urlOf(h, writer));
    await w.opened;
    const sent = ['a', 'b', 'c'].map((s) => ({ data: Buffer.from(s), binary: s !== 'b' }));
    for (const item of sent) w.ws.send(item.data, { binary: item.binary });
    w.ws.close(1000);
    await w.closed;
    expect(h.manager.stats(writer.channel_id)?.writer).toBe('done');

    const r = connect(urlOf(h, reader));
    expect((await r.closed).code).toBe(1000);
    expect(r.items).toEqual(sent);
    expect(h.manager.size).toBe(0);
  });

  test('10 MB in 64 KiB binary frames through a 4-message buffer arrives intact', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(4);
    const payload = randomBytes(10 * 1024 * 1024);
    const r = connect(urlOf(h, reader));
    const w = connect(urlOf(h, writer));
    await Promise.all([r.opened, w.opened]);
    for (let offset = 0; offset < payload.length; offset += 64 * 1024) {
      w.ws.send(payload.subarray(offset, offset + 64 * 1024), { binary: true });
    }
    w.ws.close(1000, 'stream_complete');
    expect((await r.closed).code).toBe(1000);
    expect(r.items.every((item) => item.binary)).toBe(true);
    expect(r.items).toHaveLength(160);
    expect(sha256(r.items.map((item) => item.data))).toBe(sha256([payload]));
  });

  test('with a paused reader the buffer never holds more than buffer_size and the writer is paused', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(4);
    const id = writer.channel_id;
    const r = connect(urlOf(h, reader));
    await r.opened;
    r.ws.pause(); // the reader stops reading its socket, as the SDK does when its stream is full
    const w = connect(urlOf(h, writer));
    await w.opened;

    // Enough data to fill the loopback socket buffers between engine and reader.
    const count = 512;
    const frame = (i: number) => Buffer.alloc(64 * 1024, i % 128); // valid UTF-8 for the text frames
    for (let i = 0; i < count; i++) w.ws.send(frame(i), { binary: i % 2 === 0 });
    w.ws.close(1000);

    await waitFor(() => h.manager.stats(id)?.writerPaused === true);
    const whilePaused = h.manager.stats(id);
    expect(whilePaused?.buffered).toBeLessThanOrEqual(4);
    expect(whilePaused?.peakBuffered).toBeLessThanOrEqual(4);

    let peak = 0;
    r.ws.on('message', () => {
      const stats = h.manager.stats(id);
      if (stats) peak = Math.max(peak, stats.buffered, stats.peakBuffered);
    });
    r.ws.resume();
    expect((await r.closed).code).toBe(1000);
    expect(peak).toBeLessThanOrEqual(4);
    expect(r.items).toHaveLength(count);
    r.items.forEach((item, i) => {
      expect(item.binary).toBe(i % 2 === 0);
      expect(item.data.equals(frame(i))).toBe(true);
    });
  });

  test('small messages written before the reader exists fill the buffer, pause the writer, and all arrive', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(4);
    const id = writer.channel_id;
    const w = connect(urlOf(h, writer));
    await w.opened;
    const count = 3000;
    for (let i = 0; i < count; i++) w.ws.send(`message ${i}`, { binary: i % 3 === 0 });
    w.ws.close(1000);

    await waitFor(() => h.manager.stats(id)?.writerPaused === true);
    const stats = h.manager.stats(id);
    expect(stats?.buffered).toBe(4);
    expect(stats?.peakBuffered).toBe(4);
    expect(stats?.writer).toBe('open');
    // What ws had parsed from the read in hand when the writer was paused: at most one socket read.
    expect(stats?.readAheadBytes).toBeLessThanOrEqual(64 * 1024);

    const r = connect(urlOf(h, reader));
    expect((await r.closed).code).toBe(1000);
    expect(r.items.map((item) => item.data.toString())).toEqual(
      Array.from({ length: count }, (_, i) => `message ${i}`),
    );
    expect(r.items.map((item) => item.binary)).toEqual(Array.from({ length: count }, (_, i) => i % 3 === 0));
  });

  test('an unknown channel id or a wrong key is refused with HTTP 404 "Channel not found"', async () => {
    const h = await start();
    const { reader } = h.manager.create();
    expect(await refusal(urlOf(h, { ...reader, access_key: 'not-the-key' }))).toEqual({
      status: 404,
      body: 'Channel not found',
    });
    expect((await refusal(urlOf(h, { ...reader, channel_id: 'no-such-channel' }))).status).toBe(404);
    expect(h.manager.stats(reader.channel_id)?.reader).toBe('waiting');
  });

  test('a missing key or a dir other than read/write is refused with HTTP 400', async () => {
    const h = await start();
    const { reader } = h.manager.create();
    const path = `${h.base}/ws/channels/${reader.channel_id}`;
    expect((await refusal(`${path}?key=${reader.access_key}&dir=sideways`)).status).toBe(400);
    expect((await refusal(`${path}?key=${reader.access_key}`)).status).toBe(400);
    expect((await refusal(`${path}?dir=read`)).status).toBe(400);
  });

  test('handleUpgrade leaves other paths to the caller', async () => {
    const { manager } = await start();
    const req = { url: '/?token=x' } as http.IncomingMessage;
    const socket = { destroy: () => undefined } as unknown as Duplex;
    expect(manager.handleUpgrade(req, socket, Buffer.alloc(0))).toBe(false);
    expect(manager.handleUpgrade({ url: '/ws/channels/' } as http.IncomingMessage, socket, Buffer.alloc(0))).toBe(
      false,
    );
    expect(manager.handleUpgrade({ url: '/otel' } as http.IncomingMessage, socket, Buffer.alloc(0))).toBe(false);
  });

  test('a second reader or writer is accepted and closed at once; the first ones keep working', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const r1 = connect(urlOf(h, reader));
    const w1 = connect(urlOf(h, writer));
    await Promise.all([r1.opened, w1.opened]);
    const r2 = connect(urlOf(h, reader));
    const w2 = connect(urlOf(h, writer));
    await Promise.all([r2.opened, w2.opened]);
    expect((await r2.closed).code).toBe(1008);
    expect((await w2.closed).code).toBe(1008);

    w1.ws.send('still flowing');
    w1.ws.close(1000);
    expect((await r1.closed).code).toBe(1000);
    expect(r1.items.map((item) => item.data.toString())).toEqual(['still flowing']);
    expect(r2.items).toEqual([]);
  });

  test('a channel not fully connected within ttlMs is removed and its connected end closed with 1001', async () => {
    const h = await start({ ttlMs: 200 });
    h.manager.create(); // nobody connects
    const half = h.manager.create();
    const full = h.manager.create();
    const w = connect(urlOf(h, half.writer));
    const fr = connect(urlOf(h, full.reader));
    const fw = connect(urlOf(h, full.writer));
    await Promise.all([w.opened, fr.opened, fw.opened]);
    expect(h.manager.size).toBe(3);

    expect(await w.closed).toEqual({ code: 1001, reason: 'channel expired' });
    await waitFor(() => h.manager.size === 1);
    expect(h.manager.stats(full.writer.channel_id)).toBeDefined();
    expect((await refusal(urlOf(h, half.reader))).status).toBe(404);

    // A channel whose two ends connected does not expire.
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect(h.manager.size).toBe(1);
    fw.ws.send('late but fine');
    fw.ws.close(1000);
    expect((await fr.closed).code).toBe(1000);
    expect(fr.items.map((item) => item.data.toString())).toEqual(['late but fine']);
  });

  test('a reader that vanishes drops the channel and closes the writer, even a paused one', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(1);
    const r = connect(urlOf(h, reader));
    await r.opened;
    r.ws.pause();
    const w = connect(urlOf(h, writer));
    await w.opened;
    for (let i = 0; i < 256; i++) w.ws.send(Buffer.alloc(64 * 1024, i));
    await waitFor(() => h.manager.stats(writer.channel_id)?.writerPaused === true);

    const startedAt = Date.now();
    r.ws.terminate();
    expect(await w.closed).toEqual({ code: 1001, reason: 'reader disconnected' });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(h.manager.size).toBe(0);
  });

  test('a writer that vanishes has its buffered items delivered, then the reader is closed', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const w = connect(urlOf(h, writer));
    await w.opened;
    w.ws.send('one');
    w.ws.send(Buffer.from('two'));
    await waitFor(() => h.manager.stats(writer.channel_id)?.buffered === 2);
    w.ws.terminate();
    await waitFor(() => h.manager.stats(writer.channel_id)?.writer === 'done');

    const r = connect(urlOf(h, reader));
    expect(await r.closed).toEqual({ code: 1001, reason: 'writer disconnected' });
    expect(r.items).toEqual([
      { data: Buffer.from('one'), binary: false },
      { data: Buffer.from('two'), binary: true },
    ]);
    expect(h.manager.size).toBe(0);
  });

  test('a writer frame above maxMessageBytes closes the writer with 1009; the reader gets what came before', async () => {
    const h = await start({ maxMessageBytes: 1024 });
    const { writer, reader } = h.manager.create();
    const r = connect(urlOf(h, reader));
    const w = connect(urlOf(h, writer));
    await Promise.all([r.opened, w.opened]);
    w.ws.send('fits');
    w.ws.send(Buffer.alloc(1025));
    expect((await w.closed).code).toBe(1009);
    expect(await r.closed).toEqual({ code: 1001, reason: 'writer disconnected' });
    expect(r.items).toEqual([{ data: Buffer.from('fits'), binary: false }]);
  });

  test('close() closes every channel socket with 1001 and later upgrades are refused', async () => {
    const h = await start();
    const a = h.manager.create();
    const b = h.manager.create();
    const ar = connect(urlOf(h, a.reader));
    const aw = connect(urlOf(h, a.writer));
    const bw = connect(urlOf(h, b.writer));
    await Promise.all([ar.opened, aw.opened, bw.opened]);

    h.manager.close();
    const closes = await Promise.all([ar.closed, aw.closed, bw.closed]);
    expect(closes).toEqual(Array(3).fill({ code: 1001, reason: 'engine shutting down' }));
    expect(h.manager.size).toBe(0);
    expect((await refusal(urlOf(h, b.reader))).status).toBe(404);
    expect(() => h.manager.create()).toThrow(expect.objectContaining({ code: 'engine_shutting_down' }));
  });
});

/** Records what an in-process reader receives. */
function localSink(): { handlers: LocalReaderHandlers; items: Item[]; ended: Promise<ChannelCloseKind> } {
  const items: Item[] = [];
  let resolveEnd!: (why: ChannelCloseKind) => void;
  const ended = new Promise<ChannelCloseKind>((resolve) => (resolveEnd = resolve));
  return { handlers: { message: (item) => items.push(item), end: (why) => resolveEnd(why) }, items, ended };
}

describe('ChannelManager: in-process ends', () => {
  test('a local writer reaches a WebSocket reader in order with each frame kind; end() closes it with 1000', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const r = connect(urlOf(h, reader));
    await r.opened;
    const end = h.manager.openLocalWriter(writer)!;
    expect(end).toBeDefined();
    expect(end.write(Buffer.from('text'), false)).toBe(true);
    expect(end.write(Buffer.from([1, 2, 3]), true)).toBe(true);
    end.end();
    expect((await r.closed).code).toBe(1000);
    expect(r.items).toEqual([
      { data: Buffer.from('text'), binary: false },
      { data: Buffer.from([1, 2, 3]), binary: true },
    ]);
    expect(h.manager.size).toBe(0);
  });

  test('a local writer that aborts gets its data delivered, then the reader is closed with 1001 writer disconnected', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const end = h.manager.openLocalWriter(writer)!;
    end.write(Buffer.from('partial'), true);
    end.abort();
    const r = connect(urlOf(h, reader));
    expect(await r.closed).toEqual({ code: 1001, reason: 'writer disconnected' });
    expect(r.items).toEqual([{ data: Buffer.from('partial'), binary: true }]);
  });

  test('a local writer is told to wait once the buffer is full, and drains as a slow WebSocket reader reads', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(4);
    const id = writer.channel_id;
    const end = h.manager.openLocalWriter(writer)!;
    const frame = (i: number) => Buffer.alloc(64 * 1024, i);
    const results = [0, 1, 2, 3].map((i) => end.write(frame(i), true));
    // The fourth message fills the 4-message buffer: write says "wait".
    expect(results).toEqual([true, true, true, false]);
    expect(h.manager.stats(id)).toMatchObject({ buffered: 4, writerPaused: true, writer: 'open' });

    // Write the rest only on drain, as a well-behaved producer does; the buffer never exceeds 4.
    const count = 200;
    let next = 4;
    let drains = 0;
    let peak = 0;
    const pump = () => {
      drains++;
      while (next < count) {
        const ok = end.write(frame(next++), true);
        peak = Math.max(peak, h.manager.stats(id)?.buffered ?? 0);
        if (!ok) return;
      }
      end.end();
    };
    end.onDrain = pump;
    const r = connect(urlOf(h, reader));
    expect((await r.closed).code).toBe(1000);
    expect(drains).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    expect(r.items).toHaveLength(count);
    r.items.forEach((item, i) => expect(item.data.equals(frame(i))).toBe(true));
  });

  test('a WebSocket writer reaches a local reader with each frame kind, then end(complete)', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const sink = localSink();
    expect(h.manager.openLocalReader(reader, sink.handlers)).toBeDefined();
    const w = connect(urlOf(h, writer));
    await w.opened;
    w.ws.send('{"type":"set_status"}');
    w.ws.send(Buffer.from('body'));
    w.ws.close(1000);
    expect(await sink.ended).toEqual(ChannelClose.complete);
    expect(sink.items).toEqual([
      { data: Buffer.from('{"type":"set_status"}'), binary: false },
      { data: Buffer.from('body'), binary: true },
    ]);
    expect(h.manager.size).toBe(0);
  });

  test('a WebSocket writer that vanishes ends a local reader with writerGone after what it sent', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const sink = localSink();
    h.manager.openLocalReader(reader, sink.handlers);
    const w = connect(urlOf(h, writer));
    await w.opened;
    w.ws.send('one');
    await waitFor(() => sink.items.length === 1);
    w.ws.terminate();
    expect(await sink.ended).toEqual(ChannelClose.writerGone);
    expect(sink.items).toEqual([{ data: Buffer.from('one'), binary: false }]);
  });

  test('a paused local reader holds the buffer at buffer_size and pauses the WebSocket writer; resume delivers all', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create(4);
    const id = writer.channel_id;
    const sink = localSink();
    const end = h.manager.openLocalReader(reader, sink.handlers)!;
    end.pause();
    const w = connect(urlOf(h, writer));
    await w.opened;
    const count = 512;
    const frame = (i: number) => Buffer.alloc(64 * 1024, i % 128);
    for (let i = 0; i < count; i++) w.ws.send(frame(i), { binary: true });
    w.ws.close(1000);

    await waitFor(() => h.manager.stats(id)?.writerPaused === true);
    const stats = h.manager.stats(id);
    expect(stats?.buffered).toBeLessThanOrEqual(4);
    expect(stats?.readAheadBytes).toBeLessThanOrEqual(64 * 1024 + 64 * 1024);
    expect(sink.items).toHaveLength(0);

    end.resume();
    expect(await sink.ended).toEqual(ChannelClose.complete);
    expect(sink.items).toHaveLength(count);
    sink.items.forEach((item, i) => expect(item.data.equals(frame(i))).toBe(true));
  });

  test('a local reader that cancels drops the channel and closes the WebSocket writer with 1001 reader disconnected', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const sink = localSink();
    const end = h.manager.openLocalReader(reader, sink.handlers)!;
    const w = connect(urlOf(h, writer));
    await w.opened;
    end.cancel();
    expect(await w.closed).toEqual({ code: 1001, reason: 'reader disconnected' });
    expect(h.manager.size).toBe(0);
  });

  test('a local end needs the right direction, the right key and a free end', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    expect(h.manager.openLocalWriter(reader)).toBeUndefined();
    expect(h.manager.openLocalReader(writer, localSink().handlers)).toBeUndefined();
    expect(h.manager.openLocalWriter({ ...writer, access_key: 'wrong' })).toBeUndefined();
    expect(h.manager.openLocalWriter({ ...writer, channel_id: 'nope' })).toBeUndefined();
    expect(h.manager.openLocalWriter(writer)).toBeDefined();
    expect(h.manager.openLocalWriter(writer)).toBeUndefined();
    // The WebSocket writer that comes second is turned away as any extra end is.
    const w = connect(urlOf(h, writer));
    expect((await w.closed).code).toBe(1008);
  });

  test('onAttached fires once when that end connects, not for the other end, and can be cancelled', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    const seen: string[] = [];
    h.manager.onAttached(writer.channel_id, 'writer', () => seen.push('writer'));
    const cancelled = h.manager.onAttached(writer.channel_id, 'writer', () => seen.push('cancelled'));
    h.manager.onAttached(writer.channel_id, 'reader', () => seen.push('reader'));
    cancelled();
    const w = connect(urlOf(h, writer));
    await w.opened;
    await waitFor(() => seen.length > 0);
    expect(seen).toEqual(['writer']);
    // An end that is already attached answers at once.
    h.manager.onAttached(writer.channel_id, 'writer', () => seen.push('again'));
    expect(seen).toEqual(['writer', 'again']);
    const r = connect(urlOf(h, reader));
    await r.opened;
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual(['writer', 'again', 'reader']);
  });

  test('release removes a channel no WebSocket end attached to, and keeps one the worker uses', async () => {
    const h = await start();
    const unused = h.manager.create();
    const engineOnly = h.manager.create();
    const used = h.manager.create();
    const sink = localSink();
    h.manager.openLocalReader(engineOnly.reader, sink.handlers);
    const w = connect(urlOf(h, used.writer));
    await w.opened;
    expect(h.manager.size).toBe(3);

    expect(h.manager.release(unused.writer.channel_id)).toBe(true);
    expect(h.manager.release(engineOnly.writer.channel_id)).toBe(true);
    expect(h.manager.release(used.writer.channel_id)).toBe(false);
    expect(h.manager.release('unknown')).toBe(false);
    expect(h.manager.size).toBe(1);
    expect(await sink.ended).toEqual(ChannelClose.released);
    expect(h.manager.stats(used.writer.channel_id)?.writer).toBe('open');
  });

  test('a WebSocket end arriving just after release gets Close 1001 "channel released", not 404; a wrong key still gets 404', async () => {
    const h = await start();
    const { writer, reader } = h.manager.create();
    h.manager.release(writer.channel_id);
    const late = connect(urlOf(h, writer));
    await late.opened;
    expect(await late.closed).toEqual({ code: 1001, reason: 'channel released' });
    expect((await refusal(urlOf(h, { ...reader, access_key: 'wrong' }))).status).toBe(404);
    expect(h.manager.size).toBe(0);
  });

  test('a released channel is forgotten after releasedGraceMs (at most twice that)', async () => {
    const h = await start({ releasedGraceMs: 50 });
    const { writer } = h.manager.create();
    h.manager.release(writer.channel_id);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await refusal(urlOf(h, writer))).status).toBe(404);
  });
});

describe('ChannelManager: maxOpen and maxBufferBytes', () => {
  test('create beyond maxOpen fails limit_exceeded naming engine.channels.max_open; a channel that is over frees its place', async () => {
    const refused: string[] = [];
    const h = await start({ maxOpen: 2, onLimitRefused: (key) => refused.push(key) });
    const first = h.manager.create();
    h.manager.create();
    let error: unknown;
    try {
      h.manager.create();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({
      code: 'limit_exceeded',
      message:
        'This node holds 2 open data channels (engine.channels.max_open = 2): no new channel until some complete, are released or expire; retry later',
    });
    expect(refused).toEqual(['engine.channels.max_open']);
    expect(h.manager.size).toBe(2);

    h.manager.release(first.writer.channel_id);
    expect(h.manager.create().writer.channel_id).toMatch(UUID);
    expect(h.manager.size).toBe(2);
  });

  test('messages written before the reader exists stop at maxBufferBytes (not the 1024-message count), pause the writer, and all arrive', async () => {
    const maxBufferBytes = 256 * 1024;
    const h = await start({ maxBufferBytes });
    const { writer, reader } = h.manager.create(1024);
    const id = writer.channel_id;
    const w = connect(urlOf(h, writer));
    await w.opened;
    const count = 100; // 6.25 MiB in 64 KiB frames
    const frame = (i: number) => Buffer.alloc(64 * 1024, i);
    for (let i = 0; i < count; i++) w.ws.send(frame(i), { binary: true });
    w.ws.close(1000);

    await waitFor(() => h.manager.stats(id)?.writerPaused === true);
    const held = h.manager.stats(id);
    expect(held).toMatchObject({ bufferSize: 1024, buffered: 4, bufferedBytes: maxBufferBytes, writer: 'open' });
    // At most one socket read parsed past the pause, plus the frame that did not fit.
    expect(held?.readAheadBytes).toBeLessThanOrEqual(2 * 64 * 1024);

    const r = connect(urlOf(h, reader));
    expect((await r.closed).code).toBe(1000);
    expect(r.items).toHaveLength(count);
    r.items.forEach((item, i) => expect(item.data.equals(frame(i))).toBe(true));
    expect(h.manager.size).toBe(0);
  });

  test('a paused local reader holds the buffer at maxBufferBytes and pauses the WebSocket writer; resume delivers all', async () => {
    const maxBufferBytes = 128 * 1024;
    const h = await start({ maxBufferBytes });
    const { writer, reader } = h.manager.create(1024);
    const id = writer.channel_id;
    const items: Item[] = [];
    let peakBytes = 0;
    let resolveEnd!: (why: ChannelCloseKind) => void;
    const ended = new Promise<ChannelCloseKind>((resolve) => (resolveEnd = resolve));
    const end = h.manager.openLocalReader(reader, {
      message: (item) => {
        items.push(item);
        peakBytes = Math.max(peakBytes, h.manager.stats(id)?.peakBufferedBytes ?? 0);
      },
      end: (why) => resolveEnd(why),
    })!;
    end.pause();
    const w = connect(urlOf(h, writer));
    await w.opened;
    const count = 64;
    const frame = (i: number) => Buffer.alloc(16 * 1024, i);
    for (let i = 0; i < count; i++) w.ws.send(frame(i), { binary: i % 2 === 0 });
    w.ws.close(1000);

    await waitFor(() => h.manager.stats(id)?.writerPaused === true);
    expect(h.manager.stats(id)).toMatchObject({ buffered: 8, bufferedBytes: maxBufferBytes });
    expect(items).toHaveLength(0);
    end.resume();
    expect(await ended).toEqual(ChannelClose.complete);
    expect(peakBytes).toBe(maxBufferBytes);
    expect(items).toHaveLength(count);
    items.forEach((item, i) => {
      expect(item.binary).toBe(i % 2 === 0);
      expect(item.data.equals(frame(i))).toBe(true);
    });
  });

  test('a single message larger than maxBufferBytes still passes, alone in the buffer', async () => {
    const h = await start({ maxBufferBytes: 1024 });
    const { writer, reader } = h.manager.create(16);
    const id = writer.channel_id;
    const end = h.manager.openLocalWriter(writer)!;
    const big = (i: number) => Buffer.alloc(10 * 1024, i);
    // The first fills (over-fills) the byte bound: write says "wait"; a producer that ignores it is still taken.
    expect(end.write(big(0), true)).toBe(false);
    expect(h.manager.stats(id)).toMatchObject({ buffered: 1, bufferedBytes: 10 * 1024, writerPaused: true });
    end.write(big(1), true);
    expect(h.manager.stats(id)).toMatchObject({ buffered: 1, readAhead: 1 });
    end.end();
    const r = connect(urlOf(h, reader));
    expect((await r.closed).code).toBe(1000);
    expect(r.items.map((item) => item.data)).toEqual([big(0), big(1)]);
  });

  test('a local writer is told to wait once the buffered bytes reach maxBufferBytes', async () => {
    const h = await start({ maxBufferBytes: 3 * 1000 });
    const { writer } = h.manager.create(64);
    const end = h.manager.openLocalWriter(writer)!;
    const results = [0, 1, 2].map((i) => end.write(Buffer.alloc(1000, i), true));
    expect(results).toEqual([true, true, false]);
    expect(h.manager.stats(writer.channel_id)).toMatchObject({ buffered: 3, bufferedBytes: 3000, writerPaused: true });
  });
});
