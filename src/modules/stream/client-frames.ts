/**
 * What a stream client may send (iii-modules.md §9.4): `{"type":"join"|"leave","data":
 * {"subscriptionId","streamName","groupId","id"?}}` as text or binary JSON.
 */
export interface ClientCommand {
  type: 'join' | 'leave';
  subscriptionId: string;
  streamName: string;
  groupId: string;
  /** The one item subscribed to; null for the whole group. */
  id: string | null;
}

export type ParsedFrame =
  | { kind: 'blank' }
  | { kind: 'command'; command: ClientCommand }
  /** The frame cannot be acted on; `subscriptionId` when it could be read, so the client can match the error. */
  | { kind: 'invalid'; message: string; subscriptionId?: string };

const EXPECTED = 'expected {"type":"join"|"leave","data":{"subscriptionId","streamName","groupId","id"?}}';

/** Reads one frame; blank frames are ignored (as the original), anything unusable says why. */
export function parseClientFrame(text: string): ParsedFrame {
  if (text.trim() === '') return { kind: 'blank' };
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (err) {
    return { kind: 'invalid', message: `frame is not JSON (${(err as Error).message}); ${EXPECTED}` };
  }
  if (!isObject(message)) return { kind: 'invalid', message: `frame is not a JSON object; ${EXPECTED}` };
  const type = message['type'];
  if (type !== 'join' && type !== 'leave') {
    return { kind: 'invalid', message: `unknown message type ${JSON.stringify(type) ?? 'undefined'}; ${EXPECTED}` };
  }
  const data = message['data'];
  if (!isObject(data)) return { kind: 'invalid', message: `${type} needs a \`data\` object; ${EXPECTED}` };
  const subscriptionId = typeof data['subscriptionId'] === 'string' ? data['subscriptionId'] : undefined;
  const problems: string[] = [];
  for (const key of ['subscriptionId', 'streamName', 'groupId']) {
    if (typeof data[key] !== 'string' || data[key] === '') problems.push(`data.${key} must be a non-empty string`);
  }
  const id = data['id'];
  if (id !== undefined && id !== null && typeof id !== 'string') problems.push('data.id must be a string when given');
  if (problems.length > 0) {
    const invalid: ParsedFrame = { kind: 'invalid', message: `${type}: ${problems.join('; ')}` };
    if (subscriptionId !== undefined) invalid.subscriptionId = subscriptionId;
    return invalid;
  }
  return {
    kind: 'command',
    command: {
      type,
      subscriptionId: data['subscriptionId'] as string,
      streamName: data['streamName'] as string,
      groupId: data['groupId'] as string,
      id: typeof id === 'string' ? id : null,
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
