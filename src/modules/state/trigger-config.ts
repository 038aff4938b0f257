import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';

/** What a `state` binding listens to (iii-modules.md §8.4): exact-match filters, omitted = any. */
export interface StateTriggerFilter {
  scope?: string;
  key?: string;
  conditionFunctionId?: string;
}

/** `trigger_request_format` of the `state` type. */
export const STATE_TRIGGER_CONFIG_SCHEMA: Json = {
  type: 'object',
  properties: {
    scope: { type: 'string' },
    key: { type: 'string' },
    condition_function_id: { type: 'string' },
    fan_out: { type: 'boolean', description: 'fire on every binding of a pool, not once per binding group' },
  },
};

/** `call_request_format` of the `state` type: the payload a handler receives. */
export const STATE_EVENT_SCHEMA: Json = {
  type: 'object',
  required: ['type', 'event_type', 'scope', 'key', 'old_value', 'new_value'],
  properties: {
    type: { const: 'state' },
    event_type: { enum: ['state:created', 'state:updated', 'state:deleted'] },
    scope: { type: 'string' },
    key: { type: 'string' },
    old_value: { description: 'null for state:created' },
    new_value: { description: 'null for state:deleted' },
  },
};

/** Reads a `state` binding's config; a wrong type is refused with a message naming the field. */
export function readStateTriggerConfig(config: Json): StateTriggerFilter {
  if (config === null) return {};
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new EngineError(
      ErrorCode.invalidArguments,
      `A \`state\` trigger config must be an object {scope?, key?, condition_function_id?}, got ${Array.isArray(config) ? 'an array' : typeof config}.`,
    );
  }
  const filter: StateTriggerFilter = {};
  const scope = optString(config, 'scope');
  const key = optString(config, 'key');
  const conditionFunctionId = optString(config, 'condition_function_id');
  if (scope !== undefined) filter.scope = scope;
  if (key !== undefined) filter.key = key;
  if (conditionFunctionId !== undefined) filter.conditionFunctionId = conditionFunctionId;
  return filter;
}

export function matchesStateTrigger(filter: StateTriggerFilter, scope: string, key: string): boolean {
  return (filter.scope === undefined || filter.scope === scope) && (filter.key === undefined || filter.key === key);
}

function optString(fields: Record<string, Json>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new EngineError(
      ErrorCode.invalidArguments,
      `\`${name}\` in a \`state\` trigger config must be a string, got ${Array.isArray(value) ? 'an array' : typeof value}.`,
    );
  }
  return value;
}
