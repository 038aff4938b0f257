import type { Json } from '../../src/protocol/messages';
import { readBridgedEvent } from '../../src/modules/stream/adapters/bridged-event';
import { StreamInterest } from '../../src/modules/stream/interest';

describe('StreamInterest', () => {
  it('follows a stream at its first hold and unfollows it at its last release; stray releases are ignored', () => {
    const calls: string[] = [];
    const interest = new StreamInterest({ follow: (s) => calls.push(`+${s}`), unfollow: (s) => calls.push(`-${s}`) });
    interest.hold('a');
    interest.hold('a');
    interest.hold('b');
    interest.release('a');
    interest.release('c');
    expect(calls).toEqual(['+a', '+b']);
    interest.release('a');
    interest.release('a');
    expect(calls).toEqual(['+a', '+b', '-a']);
    expect(interest.streams).toEqual(['b']);
  });
});

describe("readBridgedEvent (the payload of the other engine's stream trigger)", () => {
  const base = { type: 'stream', timestamp: 5, streamName: 's', groupId: 'g', id: 'i' };

  it('keeps the event message fields only, and defaults a missing id to null and a missing timestamp to now', () => {
    expect(readBridgedEvent({ ...base, event: { type: 'create', data: { v: 1 } }, _caller_worker_id: 'w' })).toEqual({
      ...base,
      event: { type: 'create', data: { v: 1 } },
    });
    const before = Date.now();
    const event = readBridgedEvent({
      type: 'stream',
      streamName: 's',
      groupId: 'g',
      event: { type: 'event', event: { type: 'ping', data: null } },
    });
    expect(event).toMatchObject({ id: null, event: { type: 'event', event: { type: 'ping', data: null } } });
    expect(event!.timestamp).toBeGreaterThanOrEqual(before);
  });

  it('refuses what is not a change event of a named stream and group', () => {
    const payloads: Json[] = [
      null,
      [],
      { ...base, type: 'state', event: { type: 'create', data: 1 } },
      { ...base, streamName: 3, event: { type: 'create', data: 1 } },
      { ...base, id: 7, event: { type: 'create', data: 1 } },
      { ...base, event: { type: 'sync', data: [] } },
      { ...base, event: { type: 'event', event: 'ping' } },
      { ...base },
    ];
    for (const payload of payloads) expect(readBridgedEvent(payload)).toBeUndefined();
  });
});
