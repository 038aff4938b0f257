import type { DeadLetter, QueueAdapter } from './adapter';
import { MemoryQueueAdapter } from './memory';

/** Adapter names this build can run; the schema's others (redis, rabbitmq, bridge) are refused. */
export const SUPPORTED_ADAPTERS = ['builtin'] as const;

export interface AdapterHooks {
  /** A dead letter was pushed out by the queue's `maxDeadLetters`. */
  deadLetterDropped(queue: string, dropped: DeadLetter): void;
}

/** The adapter named by `adapter.name`; an unsupported name throws, listing the supported ones. */
export function createQueueAdapter(name: string, hooks: AdapterHooks): QueueAdapter {
  if (name === 'builtin') return new MemoryQueueAdapter((queue, dropped) => hooks.deadLetterDropped(queue, dropped));
  throw new Error(`iii-queue: adapter '${name}' is not supported yet; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}`);
}
