import fc from 'fast-check';
import type { IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import type { StreamModule } from '../../src/modules/stream';
import { parseClientFrame } from '../../src/modules/stream/client-frames';
import { MAX_CLIENT_FRAME_BYTES } from '../../src/config/stream-limits';
import { call, type Any } from '../support/calls';
import { startEngine, waitFor, type TestEngine } from '../support/engine';
import { jsonText, prototypeSnapshot, prototypeUnchanged } from './arbitraries/hostile-json';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';
import { streamFrame, type StreamFrame } from './arbitraries/stream-frames';

/**
 * The stream client protocol (port 3112): the frame parser in process (20,000 runs), then
 * 8,000 hostile frames over real WebSockets (join/leave storms, huge ids, wrong kinds, unknown
 * types, bytes) and 50 oversized frames. Each unusable frame gets an `invalid_message` error
 * frame, an oversized one closes the socket with 1009, the process survives, a normal
 * subscriber keeps getting its events, and the subscription count returns to its baseline.
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

/** Error codes a fuzzed connection may receive (the documented ones of the client port). */
const ERROR_CODES = new Set(['invalid_message', 'limit_exceeded']);
/** Frames sent per run, on one connection. */
const BATCH = 20;
/** Connections the runs share, so subscriptions pile up towards the per-connection limit. */
const CONNECTIONS = 4;

function byteLength(frame: StreamFrame): number {
  return typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.length;
}

describe('stream frame parser fuzzing (20,000 runs)', () => {
  const before = prototypeSnapshot();

  it('reads 20,000 frames as blank, a command or invalid (with the subscription id when there is one)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          streamFrame.map((f) => f.data.toString()),
          jsonText,
          fc.string({ unit: 'binary', maxLength: 100 }),
        ),
        (text) => {
          const parsed = parseClientFrame(text);
          if (parsed.kind === 'command') {
            for (const key of ['subscriptionId', 'streamName', 'groupId'] as const)
              expect(parsed.command[key]).toEqual(expect.any(String));
            expect(parsed.command.subscriptionId).not.toBe('');
            expect(parsed.command.id === null || typeof parsed.command.id === 'string').toBe(true);
            return;
          }
          if (parsed.kind === 'blank') {
            expect(text.trim()).toBe('');
            return;
          }
          expect(parsed.message.length).toBeGreaterThan(0);
          let data: unknown;
          try {
            data = (JSON.parse(text) as { data?: unknown }).data;
          } catch {
            data = undefined;
          }
          const id =
            typeof data === 'object' && data !== null ? (data as Record<string, unknown>)['subscriptionId'] : undefined;
          if (typeof id === 'string' && /"type":"(join|leave)"/.test(text)) expect(parsed.subscriptionId).toBe(id);
        },
      ),
      fuzzParams(scaledRuns(20_000)),
    );
    expect(prototypeUnchanged(before)).toBe(true);
  });
});

/** A raw stream client recording every frame it receives. */
class FuzzClient {
  readonly frames: Any[] = [];
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString())));
    ws.on('close', (code) => (this.closeCode = code));
  }

  static open(port: number): Promise<FuzzClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new FuzzClient(ws)));
      ws.once('error', reject);
    });
  }

  send(frame: StreamFrame): void {
    this.ws.send(frame.data, { binary: frame.binary });
  }

  join(subscriptionId: string, streamName: string, groupId: string): void {
    this.ws.send(JSON.stringify({ type: 'join', data: { subscriptionId, streamName, groupId } }));
  }

  /** The first frame from `from` on matching `match`. */
  next(match: (frame: Any) => boolean, what: string, from = 0): Promise<Any> {
    return waitFor(() => this.frames.slice(from).find(match), what, 10_000);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('stream client port fuzzing over real WebSockets (8,050 frames)', () => {
  let t: TestEngine;
  let writer: IIIClient;
  let port: number;
  let module: StreamModule;
  const clients: Array<FuzzClient | undefined> = [];
  let check: FuzzClient;
  let marker = 0;

  beforeAll(async () => {
    t = await startEngine();
    writer = t.worker('stream-fuzz-writer');
    module = t.engine.module<StreamModule>('iii-stream')!;
    port = module.port;
    check = await FuzzClient.open(port);
    check.join('check', 'fz-check', 'g');
    await check.next(
      (f) => f.type === 'stream' && f.streamName === 'fz-check' && f.event.type === 'sync',
      'the check sync',
    );
  });

  afterAll(async () => {
    for (const c of clients) c?.close();
    check.close();
    await t.close();
  });

  async function client(index: number): Promise<FuzzClient> {
    const existing = clients[index];
    if (existing && existing.closeCode === undefined) return existing;
    clients[index] = await FuzzClient.open(port);
    return clients[index];
  }

  /** A write reaches the untouched subscriber: delivery still works. */
  async function deliveryWorks(): Promise<void> {
    const item = `i${++marker}`;
    const from = check.frames.length;
    await call(writer, 'stream::set', { stream_name: 'fz-check', group_id: 'g', item_id: item, data: marker });
    await check.next((f) => f.type === 'stream' && f.id === item, `the event of ${item}`, from);
  }

  it('answers 8,000 hostile frames (20 per run on 4 shared connections) with documented error frames', async () => {
    const frames = streamFrame.filter((f) => byteLength(f) <= MAX_CLIENT_FRAME_BYTES);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(CONNECTIONS - 1),
        fc.array(frames, { minLength: BATCH, maxLength: BATCH }),
        async (index, batch) => {
          const c = await client(index);
          const from = c.frames.length;
          for (const frame of batch) c.send(frame);
          // Frames are handled in order: once the marker's sync is back, the batch has been answered.
          const group = `marker-${++marker}`;
          c.join('marker', 'fz-marker', group);
          await c.next(
            (f) => f.type === 'stream' && f.groupId === group && f.event.type === 'sync',
            `the sync of ${group}`,
            from,
          );
          const answered = c.frames.slice(from);
          for (const f of answered) expect(['stream', 'error']).toContain(f.type);
          const errors = answered.filter((f) => f.type === 'error');
          for (const e of errors) {
            expect(ERROR_CODES.has(e.error.code)).toBe(true);
            expect(e.error.message).toEqual(expect.any(String));
          }
          const invalid = batch.filter((f) => parseClientFrame(f.data.toString()).kind === 'invalid').length;
          expect(errors.filter((e) => e.error.code === 'invalid_message')).toHaveLength(invalid);
          expect(c.closeCode).toBeUndefined();
          await deliveryWorks();
        },
      ),
      fuzzParams(scaledRuns(8_000 / BATCH)),
    );
  });

  it('closes the socket with 1009 for 50 frames over the 64 KB limit, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: MAX_CLIENT_FRAME_BYTES + 1, max: 3 * MAX_CLIENT_FRAME_BYTES }),
        fc.boolean(),
        async (size, binary) => {
          const c = await FuzzClient.open(port);
          c.join('before', 'fz-a', 'g1');
          c.send({
            data: binary ? Buffer.alloc(size, 0x7b) : `{"type":"join","data":{"subscriptionId":"${'x'.repeat(size)}"}}`,
            binary,
          });
          await waitFor(() => c.closeCode, 'the close');
          expect(c.closeCode).toBe(1009);
          await deliveryWorks();
        },
      ),
      fuzzParams(scaledRuns(50)),
    );
  });

  it('returns to the baseline of clients and subscriptions once the fuzzed connections close', async () => {
    for (const c of clients) c?.close();
    // The check client alone remains.
    await waitFor(
      () => module.clientStats.clients === 1 && module.clientStats.subscriptions === 1,
      `1 client and 1 subscription left (now ${JSON.stringify(module.clientStats)})`,
    );
    await deliveryWorks();
  });
});
