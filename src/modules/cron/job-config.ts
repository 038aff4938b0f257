import { bindingGroupKey } from '../../engine/binding-groups';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { Input } from '../input';
import { CronExpression, CronSyntaxError } from './expression';
import type { CronJob } from './scheduler';

/**
 * Reads a `cron` binding's config `{expression, condition_function_id?, fan_out?}`; throws (refusing the
 * binding) with the original's messages: "Cron expression is required" and
 * "Invalid cron expression '<expr>': <reason>".
 */
export function readCronJob(trigger: TriggerEntry): CronJob {
  const input = new Input('cron trigger config', isObject(trigger.config) ? trigger.config : {});
  const source = input.optString('expression');
  if (source === undefined || source === '') throw new Error('Cron expression is required');
  let expression: CronExpression;
  try {
    expression = CronExpression.parse(source);
  } catch (err) {
    if (err instanceof CronSyntaxError) throw new Error(`Invalid cron expression '${source}': ${err.message}`);
    throw err;
  }
  const conditionFunctionId = input.optString('condition_function_id');
  const lockId = bindingGroupKey(trigger);
  return conditionFunctionId === undefined
    ? { trigger, lockId, expression }
    : { trigger, lockId, expression, conditionFunctionId };
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
