import fc from 'fast-check';
import { ErrorCode } from '../../src/protocol/errors';
import { startEngine, waitFor, type TestEngine } from '../support/engine';
import { RawClient } from '../support/raw-client';
import { hostileString } from './arbitraries/hostile-json';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';
import { brokenInvokeFunction, mutatedWireMessage } from './arbitraries/wire-messages';

/**
 * The worker protocol over a real socket, 4,000 frames: every undecodable `invokefunction` that
 * names an invocation is answered with an `invocationresult` error carrying that id; hostile
 * frames of every type leave the connection usable; and what they registered is gone once the
 * connection closes (registry back to its baseline, no pending call).
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

interface RegistryCounts {
  workers: number;
  functions: number;
  triggerTypes: number;
  triggers: number;
  pending: number;
}

describe('worker protocol fuzzing over a real socket (4,000 frames)', () => {
  let t: TestEngine;
  let baseline: RegistryCounts;

  function counts(): RegistryCounts {
    const r = t.engine.registry;
    return {
      workers: [...r.workers()].length,
      functions: [...r.functionIds()].length,
      triggerTypes: [...r.triggerTypes()].length,
      triggers: [...r.triggers()].length,
      pending: t.engine.router.pending.size,
    };
  }

  beforeAll(async () => {
    t = await startEngine();
    baseline = counts();
  });

  afterAll(async () => {
    await t.close();
  });

  it('answers 2,000 undecodable invokefunction frames with an invocationresult error carrying their invocation_id', async () => {
    const client = await RawClient.connect(t.url);
    await client.registered();
    let n = 0;
    const invocationId = fc.oneof(
      fc.uuid(),
      hostileString.filter((s) => s !== '' && s.length < 2_000),
    );
    try {
      await fc.assert(
        fc.asyncProperty(brokenInvokeFunction(invocationId), async ({ text, invocationId: id }) => {
          // A run number in front keeps every id unique, so each answer is this frame's.
          const unique = `${++n}:${id}`;
          client.send(
            text.replace(`"invocation_id":${JSON.stringify(id)}`, () => `"invocation_id":${JSON.stringify(unique)}`),
          );
          const answer = await client.next(
            (m) => m.type === 'invocationresult' && m['invocation_id'] === unique,
            5_000,
          );
          expect(answer['function_id']).toEqual(expect.any(String));
          expect(answer['error']).toEqual({
            code: ErrorCode.invalidMessage,
            message: expect.stringMatching(/^Invalid invokefunction: /),
          });
        }),
        fuzzParams(scaledRuns(2_000)),
      );
      expect(client.closed).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('stays usable through 2,000 mutated frames of every type, and forgets what they registered on close', async () => {
    const client = await RawClient.connect(t.url);
    await client.registered();
    /** Whether the frames registered anything (so "back to the baseline" means something). */
    let registered = false;
    const runs = scaledRuns(2_000 / 10);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              mutatedWireMessage,
              fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
            ),
            { minLength: 10, maxLength: 10 },
          ),
          async (frames) => {
            for (const frame of frames) client.socket.send(frame);
            // Frames are handled in order: the pong says the batch went through.
            const before = client.received.filter((m) => m.type === 'pong').length;
            client.send({ type: 'ping' });
            await waitFor(
              () => client.received.filter((m) => m.type === 'pong').length > before,
              'the pong after the batch',
            );
            expect(client.closed).toBeUndefined();
            const now = counts();
            registered ||= now.functions > baseline.functions || now.triggerTypes > baseline.triggerTypes;
          },
        ),
        fuzzParams(runs),
      );
      // A tiny FUZZ_RUNS_SCALE may register nothing.
      if (runs >= 50) expect(registered).toBe(true);
    } finally {
      client.close();
    }
    await waitFor(
      () => JSON.stringify(counts()) === JSON.stringify(baseline),
      `the registry back to ${JSON.stringify(baseline)} (now ${JSON.stringify(counts())})`,
    );
  });
});
