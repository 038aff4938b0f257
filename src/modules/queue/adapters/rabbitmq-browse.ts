import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import type { DeadLetter } from './adapter';
import { attemptsOf, parseJob } from './rabbitmq-consumer';
import { Header } from './rabbitmq-names';

/**
 * Reading a queue without consuming it. AMQP 0-9-1 has no "peek", so a browse takes messages
 * with `basic.get` unacknowledged on a channel of its own, acknowledges the ones it means to
 * remove, and closes the channel: the broker puts every other one back at its original place
 * in the queue. Limits: while a browse holds messages, other nodes (and consumers) do not see
 * them, so two browses at once each see a part; and each message read costs a round trip.
 */
export async function onOwnChannel<T>(model: ChannelModel, visit: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await model.createChannel();
  // A channel error (e.g. the queue was deleted) surfaces as the operation's rejection.
  channel.on('error', () => undefined);
  try {
    return await visit(channel);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** The next message of `queue`, unacknowledged, or undefined when it is empty. */
export async function take(channel: Channel, queue: string): Promise<GetMessage | undefined> {
  const msg = await channel.get(queue, { noAck: false });
  return msg === false ? undefined : msg;
}

/** A dead letter as the adapter stored it (the job as body, the failure in headers). */
export function letterOf(msg: GetMessage): DeadLetter | undefined {
  const job = parseJob(msg);
  if (!job) return undefined;
  const headers: Record<string, unknown> = msg.properties.headers ?? {};
  const error = headers[Header.error];
  const failedAt = headers[Header.failedAt];
  return {
    job,
    error: typeof error === 'string' ? error : Buffer.isBuffer(error) ? error.toString('utf8') : '',
    failedAtMs: typeof failedAt === 'number' ? failedAt : 0,
    attemptsMade: attemptsOf(msg),
  };
}
