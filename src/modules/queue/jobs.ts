import { EngineError } from '../../protocol/errors';
import type { CallRequest } from '../../router/router';
import type { QueueJob } from './adapters/adapter';
import { QueueErrorCode } from './errors';

/** What a producer gives: a job without the adapter's bookkeeping. */
export type JobFields = Omit<QueueJob, 'sizeBytes' | 'enqueuedAtMs'>;

/**
 * A message ready for an adapter. `data` larger than `maxMessageBytes` (as JSON) is refused:
 * every held message is bounded, whatever path it came by.
 */
export function newJob(fields: JobFields, maxMessageBytes: number): QueueJob {
  const sizeBytes = Buffer.byteLength(JSON.stringify(fields.data));
  if (sizeBytes > maxMessageBytes) {
    throw new EngineError(
      QueueErrorCode.invalidMessage,
      `Message for ${fields.functionId} is ${sizeBytes} bytes of JSON; the queue accepts at most ${maxMessageBytes} bytes (adapter.config.max_message_bytes)`,
    );
  }
  const job: QueueJob = {
    id: fields.id,
    functionId: fields.functionId,
    data: fields.data,
    sizeBytes,
    enqueuedAtMs: Date.now(),
  };
  if (fields.group !== undefined) job.group = fields.group;
  if (fields.traceparent !== undefined) job.traceparent = fields.traceparent;
  if (fields.baggage !== undefined) job.baggage = fields.baggage;
  return job;
}

/** The call one delivery makes: the message's data as payload, its trace context carried on. */
export function deliveryCall(job: QueueJob): CallRequest {
  const request: CallRequest = { functionId: job.functionId, data: job.data };
  if (job.traceparent !== undefined) request.traceparent = job.traceparent;
  if (job.baggage !== undefined) request.baggage = job.baggage;
  return request;
}
