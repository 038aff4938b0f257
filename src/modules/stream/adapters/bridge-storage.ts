import { randomUUID } from 'node:crypto';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { RemoteEngine } from '../../bridge/remote-engine';
import type { UpdateOpError } from '../../state/update-ops';
import { readBridgedEvent } from './bridged-event';
import type { StreamEventHandler } from './event-bus';
import type { StreamMirror } from './mirror';
import type { ItemUpdate, StreamStorage, StreamSummary } from './storage';

/**
 * A stream nobody on this node follows any more stays bound on the other engine this long, in
 * ms: a client that leaves and joins again does not unbind and bind each time, and an unbind
 * is long done before the same binding id is sent again.
 */
export const UNFOLLOW_AFTER_MS = 30_000;

export interface BridgeStreamOptions {
  /** The other engine's worker port, `ws://` or `wss://`. */
  url: string;
  /** Its worker token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  nodeId: string;
  logger: Logger;
  /** Each `stream::*` call waits this long for the other engine, in ms; then `bridge_unavailable` or `invocation_timeout`. */
  timeoutMs: number;
  /** See UNFOLLOW_AFTER_MS (tests shorten it), in ms. */
  unfollowAfterMs?: number;
}

/**
 * `iii-stream` served by another engine (`adapter: {name: bridge, config: {bridge_url}}`), over
 * a worker connection of this one: every storage operation and `stream::send` is that engine's
 * `stream::*` function. Its changes, whoever made them, come back through `stream` triggers this
 * adapter binds there, one per followed stream (the trigger type needs a `stream_name`), all to
 * one function it serves there. The original relays events over the other engine's pubsub
 * topic `stream.events` instead, which misses the changes made there directly.
 */
export class BridgeStreamStorage implements StreamStorage, StreamMirror {
  private readonly remote: RemoteEngine;
  /** Unique per engine run: two engines bridged to one remote never share it (a pool would split the events). */
  private readonly eventsFunction: string;
  /** Streams bound there: undefined while followed here, else the timer that unbinds it. */
  private readonly bound = new Map<string, NodeJS.Timeout | undefined>();
  private readonly unfollowAfterMs: number;
  /** Set by `close`: clients cut at shutdown still unfollow, after it. */
  private closed = false;

  constructor(private readonly options: BridgeStreamOptions) {
    this.remote = new RemoteEngine({
      url: options.url,
      ...(options.token ? { token: options.token } : {}),
      workerName: `iii-stream@${options.nodeId}`,
      logger: options.logger,
    });
    this.eventsFunction = `iii-bridge::${options.nodeId}::stream-events::${randomUUID()}`;
    this.unfollowAfterMs = options.unfollowAfterMs ?? UNFOLLOW_AFTER_MS;
  }

  /** Connects (and keeps reconnecting); calls made before the link is up wait for it until their deadline. */
  start(): void {
    this.remote.start();
  }

  /** Streams bound on the other engine (followed or lingering), for tests. */
  get boundStreams(): string[] {
    return [...this.bound.keys()];
  }

  watch(onEvent: StreamEventHandler): void {
    this.remote.serve(
      this.eventsFunction,
      async (payload) => {
        const event = readBridgedEvent(payload);
        if (event) onEvent(event);
        else
          this.options.logger.warn(
            { url: this.options.url },
            'bridge: a stream trigger payload that is not a stream change event was dropped',
          );
        return undefined;
      },
      'Stream changes of the bridged engine, mirrored',
    );
  }

  follow(streamName: string): void {
    if (this.closed) return;
    if (this.bound.has(streamName)) {
      clearTimeout(this.bound.get(streamName));
      this.bound.set(streamName, undefined);
      return;
    }
    this.bound.set(streamName, undefined);
    this.remote.bind(this.triggerId(streamName), 'stream', this.eventsFunction, { stream_name: streamName });
  }

  unfollow(streamName: string): void {
    if (this.closed || !this.bound.has(streamName)) return;
    clearTimeout(this.bound.get(streamName));
    const timer = setTimeout(() => {
      this.bound.delete(streamName);
      this.remote.unbind(this.triggerId(streamName));
    }, this.unfollowAfterMs);
    timer.unref();
    this.bound.set(streamName, timer);
  }

  async send(
    streamName: string,
    groupId: string,
    id: string | null,
    event: { type: string; data: Json },
  ): Promise<void> {
    await this.call('stream::send', {
      stream_name: streamName,
      group_id: groupId,
      type: event.type,
      data: event.data,
      ...(id === null ? {} : { id }),
    });
  }

  async get(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    return this.call('stream::get', item(streamName, groupId, itemId));
  }

  async set(streamName: string, groupId: string, itemId: string, value: Json): Promise<Json | undefined> {
    return field(await this.call('stream::set', { ...item(streamName, groupId, itemId), data: value }), 'old_value');
  }

  async delete(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    return field(await this.call('stream::delete', item(streamName, groupId, itemId)), 'old_value');
  }

  async update(streamName: string, groupId: string, itemId: string, ops: Json): Promise<ItemUpdate> {
    const result = await this.call('stream::update', { ...item(streamName, groupId, itemId), ops });
    const errors = field(result, 'errors');
    return {
      oldValue: field(result, 'old_value'),
      newValue: field(result, 'new_value') ?? null,
      errors: Array.isArray(errors) ? (errors as unknown as UpdateOpError[]) : [],
    };
  }

  async list(streamName: string, groupId: string): Promise<Json[]> {
    const result = await this.call('stream::list', { stream_name: streamName, group_id: groupId });
    return Array.isArray(result) ? result : [];
  }

  async listGroups(streamName: string): Promise<string[]> {
    const result = await this.call('stream::list_groups', { stream_name: streamName });
    return Array.isArray(result) ? result.filter((g): g is string => typeof g === 'string') : [];
  }

  async listAll(): Promise<StreamSummary[]> {
    const streams = field(await this.call('stream::list_all', {}), 'stream');
    if (!Array.isArray(streams)) return [];
    return streams.flatMap((s) => {
      const id = field(s, 'id');
      const groups = field(s, 'groups');
      return typeof id === 'string'
        ? [{ id, groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [] }]
        : [];
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.bound.values()) clearTimeout(timer);
    this.bound.clear();
    await this.remote.close();
  }

  private triggerId(streamName: string): string {
    return `${this.eventsFunction}::${streamName}`;
  }

  private call(functionId: string, data: Json): Promise<Json | undefined> {
    return this.remote.call(functionId, data, this.options.timeoutMs);
  }
}

function item(streamName: string, groupId: string, itemId: string): Record<string, Json> {
  return { stream_name: streamName, group_id: groupId, item_id: itemId };
}

/** A key of a result object; null (the other engine's "none") and absent both read as undefined. */
function field(result: Json | undefined, key: string): Json | undefined {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
  return result[key] ?? undefined;
}
