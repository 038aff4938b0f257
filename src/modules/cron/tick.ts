import { bindingCall } from '../../engine/binding-groups';
import type { Json } from '../../protocol/messages';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';
import type { CronJob } from './scheduler';

/**
 * One run of a cron job: checks the condition, then calls the handler with the tick's payload
 * and the binding's metadata, and waits for it (so the next occurrence is computed afterwards).
 */
export async function runCronTick(host: ModuleHost, job: CronJob, scheduledTime: Date): Promise<void> {
  const { trigger } = job;
  const payload: Json = {
    trigger: 'cron',
    job_id: trigger.id,
    scheduled_time: scheduledTime.toISOString(),
    actual_time: new Date().toISOString(),
  };
  if (!(await conditionPasses(host, job.conditionFunctionId, payload, trigger.metadata))) return;
  await host.invoke(bindingCall(host.registry, trigger, payload, trigger.metadata));
}

/** `trigger_request_format` of the `cron` type. */
export const CRON_CONFIG_SCHEMA: Json = {
  type: 'object',
  properties: {
    expression: {
      type: 'string',
      description: 'sec min hour day-of-month month day-of-week [year], UTC; day-of-week 1 = Sunday',
    },
    condition_function_id: { type: 'string' },
    fan_out: { type: 'boolean', description: 'fire on every binding of a pool, not once per binding group' },
  },
  required: ['expression'],
};

/** `call_request_format` of the `cron` type: what the handler receives. */
export const CRON_PAYLOAD_SCHEMA: Json = {
  type: 'object',
  properties: {
    trigger: { const: 'cron' },
    job_id: { type: 'string' },
    scheduled_time: { type: 'string', format: 'date-time' },
    actual_time: { type: 'string', format: 'date-time' },
  },
  required: ['trigger', 'job_id', 'scheduled_time', 'actual_time'],
};
