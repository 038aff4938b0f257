import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { applyUpdateOps } from '../state/update-ops';
import type { ModuleHost } from '../../engine/module';
import type { ItemUpdate, StreamMirror, StreamStorage } from './adapters';
import { StreamErrorCode } from './error-codes';
import { streamEvent, type StreamEvent, type StreamEventDetail } from './events';

export interface ItemRef {
  streamName: string;
  groupId: string;
  itemId: string;
}

/** The `stream::*` operations a custom stream may take over by registering `stream::<op>(<name>)`. */
type CustomOp = 'get' | 'set' | 'delete' | 'list' | 'list_groups' | 'send' | 'update';

/**
 * The stream operations behind the `stream::*` functions and the client port's sync. Each one
 * first looks for a worker-registered `stream::<op>(<stream_name>)` (how the SDK's
 * `createStream` plugs in custom storage) and calls it with the caller's input; otherwise it
 * uses the adapter. Writes then emit their event, whichever storage took them, except writes
 * to a mirrored adapter (the bridge): that one reports them itself, so emitting here too would
 * deliver them twice.
 */
export class StreamService {
  /**
   * @param mirror present when the adapter is mirrored: its writes emit nothing here, and
   *   `stream::send` (of a stream without a custom `send`) is made through it.
   */
  constructor(
    private readonly host: ModuleHost,
    private readonly storage: StreamStorage,
    private readonly emit: (event: StreamEvent) => void,
    private readonly mirror?: Pick<StreamMirror, 'send'>,
  ) {}

  async get(ref: ItemRef, input: Json): Promise<Json> {
    const custom = this.custom('get', ref.streamName);
    return this.attempt(StreamErrorCode.get, 'stream::get', async () =>
      custom
        ? await this.call(custom, input)
        : ((await this.storage.get(ref.streamName, ref.groupId, ref.itemId)) ?? null),
    );
  }

  async set(ref: ItemRef, data: Json, input: Json): Promise<Json> {
    const custom = this.custom('set', ref.streamName);
    return this.attempt(StreamErrorCode.set, 'stream::set', async () => {
      if (custom) {
        const result = await this.call(custom, input);
        this.emitChange(ref, field(result, 'old_value'), field(result, 'new_value') ?? data);
        return result;
      }
      const old = await this.storage.set(ref.streamName, ref.groupId, ref.itemId, data);
      if (!this.mirror) this.emitChange(ref, old, data);
      return { old_value: old ?? null, new_value: data };
    });
  }

  async delete(ref: ItemRef, input: Json): Promise<Json> {
    const custom = this.custom('delete', ref.streamName);
    return this.attempt(StreamErrorCode.delete, 'stream::delete', async () => {
      const result = custom
        ? await this.call(custom, input)
        : { old_value: (await this.storage.delete(ref.streamName, ref.groupId, ref.itemId)) ?? null };
      const old = field(result, 'old_value');
      // Only a delete that removed something is an event (as the original).
      if (old !== undefined && (custom || !this.mirror)) this.emitItem(ref, { type: 'delete', data: old });
      return result;
    });
  }

  /**
   * `stream::update`: a registered `stream::update(<name>)` takes it; a custom stream with only
   * get and set (what `createStream` registers) gets read-apply-write through them (ours: not
   * atomic, but it lands in the custom storage instead of silently in the adapter).
   */
  async update(ref: ItemRef, ops: Json, input: Json): Promise<Json> {
    const custom = this.custom('update', ref.streamName);
    const customGet = this.custom('get', ref.streamName);
    const customSet = this.custom('set', ref.streamName);
    return this.attempt(StreamErrorCode.update, 'stream::update', async () => {
      if (custom) {
        const result = await this.call(custom, input);
        const newValue = field(result, 'new_value');
        if (newValue !== undefined) this.emitChange(ref, field(result, 'old_value'), newValue);
        return result;
      }
      const through = customGet !== undefined && customSet !== undefined;
      const change = through
        ? await this.updateThrough(customGet, customSet, ref, ops)
        : await this.storage.update(ref.streamName, ref.groupId, ref.itemId, ops);
      if (through || !this.mirror) this.emitChange(ref, change.oldValue, change.newValue);
      const out: Record<string, Json> = { old_value: change.oldValue ?? null, new_value: change.newValue };
      if (change.errors.length > 0) out.errors = change.errors.map((error) => ({ ...error }));
      return out;
    });
  }

  async list(streamName: string, groupId: string, input: Json): Promise<Json> {
    const custom = this.custom('list', streamName);
    return this.attempt(StreamErrorCode.list, 'stream::list', async () =>
      custom ? ((await this.call(custom, input)) ?? []) : await this.storage.list(streamName, groupId),
    );
  }

  async listGroups(streamName: string, input: Json): Promise<Json> {
    const custom = this.custom('list_groups', streamName);
    return this.attempt(StreamErrorCode.listGroups, 'stream::list_groups', async () =>
      custom ? ((await this.call(custom, input)) ?? []) : await this.storage.listGroups(streamName),
    );
  }

  /** Streams of the adapter only: custom streams cannot be enumerated. */
  async listAll(): Promise<Json> {
    return this.attempt(StreamErrorCode.listAll, 'stream::list_all', async () => {
      const streams = await this.storage.listAll();
      return { stream: streams.map(({ id, groups }) => ({ id, groups })), count: streams.length };
    });
  }

  /** A broadcast to the group's subscribers; nothing is stored. Mirrored: made on the other engine, which reports it back. */
  async send(
    streamName: string,
    groupId: string,
    id: string | null,
    event: { type: string; data: Json },
    input: Json,
  ): Promise<null> {
    const custom = this.custom('send', streamName);
    return this.attempt(StreamErrorCode.send, 'stream::send', async () => {
      if (custom) await this.call(custom, input);
      if (!custom && this.mirror) await this.mirror.send(streamName, groupId, id, event);
      else this.emit(streamEvent(streamName, groupId, id, { type: 'event', event }));
      return null;
    });
  }

  /** Read-apply-write through a custom stream's own get and set. */
  private async updateThrough(getId: string, setId: string, ref: ItemRef, ops: Json): Promise<ItemUpdate> {
    const item = { stream_name: ref.streamName, group_id: ref.groupId, item_id: ref.itemId };
    const oldValue = (await this.call(getId, item)) ?? undefined;
    const { value, errors } = applyUpdateOps(oldValue, ops);
    await this.call(setId, { ...item, data: value });
    return { oldValue, newValue: value, errors };
  }

  private emitChange(ref: ItemRef, oldValue: Json | undefined, newValue: Json): void {
    this.emitItem(ref, { type: oldValue === undefined ? 'create' : 'update', data: newValue });
  }

  private emitItem(ref: ItemRef, detail: StreamEventDetail): void {
    this.emit(streamEvent(ref.streamName, ref.groupId, ref.itemId, detail));
  }

  private custom(op: CustomOp, streamName: string): string | undefined {
    const id = `stream::${op}(${streamName})`;
    return this.host.registry.pool(id).length > 0 ? id : undefined;
  }

  private async call(functionId: string, input: Json): Promise<Json> {
    const { result } = await this.host.invoke({ functionId, data: input });
    return result ?? null;
  }

  /** Runs one operation; its failure carries the operation's error code and says what failed. */
  private async attempt<T>(code: string, what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const cause = EngineError.from(err);
      throw new EngineError(code, `${what} failed: ${cause.code}: ${cause.message}`);
    }
  }
}

/** A key of a result object; null and absent are both "absent", as the original's Option. */
function field(result: Json, key: string): Json | undefined {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
  return result[key] ?? undefined;
}

/** What a new subscription is sent first (`sync`): the item when it names one, else the whole group. */
export function initialSync(
  service: StreamService,
  streamName: string,
  groupId: string,
  id: string | null,
): Promise<Json> {
  const input = { stream_name: streamName, group_id: groupId };
  return id === null
    ? service.list(streamName, groupId, input)
    : service.get({ streamName, groupId, itemId: id }, { ...input, item_id: id });
}
