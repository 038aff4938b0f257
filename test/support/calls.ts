import type { IIIClient } from 'iii-sdk';

/** Results of built-ins are plain JSON; the tests read them loosely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Any = any;

/** Calls `functionId` as a worker would. */
export function call(worker: IIIClient, functionId: string, payload: unknown): Promise<Any> {
  return worker.trigger({ function_id: functionId, payload });
}

/** The error of a call that must fail (fails the test if the call succeeds). */
export function failure(worker: IIIClient, functionId: string, payload: unknown): Promise<Any> {
  return rejection(call(worker, functionId, payload), functionId);
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>, what = 'the call'): Promise<Any> {
  const outcome = await promise.then(
    (value: unknown) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  if (outcome.ok) throw new Error(`${what} succeeded with ${JSON.stringify(outcome.value)}, expected an error`);
  return outcome.err;
}
