import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';

/** What a `stream` binding listens to: exact-match filters, omitted = any. */
export interface StreamTriggerFilter {
  streamName: string;
  groupId?: string;
  itemId?: string;
  conditionFunctionId?: string;
}

/** What a `stream:join`/`stream:leave` binding listens to (ours: `stream_name` is honoured). */
export interface MembershipTriggerFilter {
  streamName?: string;
  conditionFunctionId?: string;
}

/** Reads a `stream` binding's config; refuses one without `stream_name` (the original crashes). */
export function readStreamTriggerConfig(config: Json): StreamTriggerFilter {
  const fields = config === null ? {} : configObject('stream', config);
  const streamName = optString('stream', fields, 'stream_name');
  if (streamName === undefined) {
    throw new EngineError(
      ErrorCode.invalidArguments,
      'A `stream` trigger needs `stream_name` in its config: the name of the stream whose changes fire it.',
    );
  }
  return {
    streamName,
    groupId: optString('stream', fields, 'group_id'),
    itemId: optString('stream', fields, 'item_id'),
    conditionFunctionId: optString('stream', fields, 'condition_function_id'),
  };
}

export function readMembershipTriggerConfig(type: string, config: Json): MembershipTriggerFilter {
  const fields = config === null ? {} : configObject(type, config);
  return {
    streamName: optString(type, fields, 'stream_name'),
    conditionFunctionId: optString(type, fields, 'condition_function_id'),
  };
}

export function matchesStreamTrigger(
  filter: StreamTriggerFilter,
  streamName: string,
  groupId: string,
  itemId: string | null,
): boolean {
  return (
    filter.streamName === streamName &&
    (filter.groupId === undefined || filter.groupId === groupId) &&
    (filter.itemId === undefined || filter.itemId === itemId)
  );
}

function configObject(type: string, config: Json): Record<string, Json> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new EngineError(
      ErrorCode.invalidArguments,
      `A \`${type}\` trigger config must be an object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}.`,
    );
  }
  return config;
}

function optString(type: string, fields: Record<string, Json>, key: string): string | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new EngineError(
      ErrorCode.invalidArguments,
      `\`${key}\` in a \`${type}\` trigger config must be a non-empty string.`,
    );
  }
  return value;
}
