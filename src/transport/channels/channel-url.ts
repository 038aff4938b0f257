/** The data-channel route on the worker port (protocol §1.2, §5). */
export const CHANNEL_PATH_PREFIX = '/ws/channels/';

export type ChannelDirection = 'read' | 'write';

export type ChannelUrl =
  /** Not the channel route: the caller routes the request elsewhere. */
  | { kind: 'other' }
  /** The channel route with a query that cannot be used: HTTP 400. */
  | { kind: 'invalid'; reason: string }
  | ({ kind: 'channel' } & ChannelTarget);

/** One end of one channel, as a worker asks for it. */
export interface ChannelTarget {
  channelId: string;
  key: string;
  direction: ChannelDirection;
}

/**
 * Reads `/ws/channels/<id>?key=<access_key>&dir=read|write` from a request target. Parsed by hand
 * rather than with `new URL`, which would read a target like `//host/x` as a different host.
 */
export function parseChannelUrl(target: string): ChannelUrl {
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  if (!path.startsWith(CHANNEL_PATH_PREFIX)) return { kind: 'other' };
  const rawId = path.slice(CHANNEL_PATH_PREFIX.length);
  if (rawId === '' || rawId.includes('/')) return { kind: 'other' };

  let channelId: string;
  try {
    channelId = decodeURIComponent(rawId);
  } catch {
    return { kind: 'invalid', reason: 'Malformed channel id' };
  }

  const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1));
  const key = query.get('key');
  if (key === null || key === '') return { kind: 'invalid', reason: 'Missing query parameter: key' };
  const dir = query.get('dir');
  if (dir !== 'read' && dir !== 'write') {
    return { kind: 'invalid', reason: 'Query parameter dir must be "read" or "write"' };
  }
  return { kind: 'channel', channelId, key, direction: dir };
}
