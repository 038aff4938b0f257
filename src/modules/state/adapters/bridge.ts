import { randomUUID } from 'node:crypto';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { DEFAULT_BRIDGE_TIMEOUT_MS } from '../../bridge';
import { RemoteEngine } from '../../bridge/remote-engine';
import { serializeWithin } from '../errors';
import type { StateEvent } from '../triggers';
import type { UpdateOpError } from '../update-ops';
import type { StateAdapter, StateUpdateOutcome } from './adapter';

export interface BridgeStateOptions {
  url: string;
  token?: string;
  nodeId: string;
  logger: Logger;
}

/**
 * `iii-state` served by another engine (`adapter: {name: bridge, config: {bridge_url}}`): every
 * `state::*` call is made on that engine, over a worker connection of this one. Its changes,
 * whoever made them, come back through a `state` trigger this adapter binds there, so local
 * `state` triggers fire for them (and the module does not fire for its own writes again).
 */
export class BridgeStateAdapter implements StateAdapter {
  private readonly remote: RemoteEngine;
  private readonly eventsFunction: string;

  constructor(options: BridgeStateOptions) {
    this.remote = new RemoteEngine({
      url: options.url,
      ...(options.token ? { token: options.token } : {}),
      workerName: `iii-state@${options.nodeId}`,
      logger: options.logger,
    });
    // Unique per engine process: two engines bridged to one remote must not pool their reports.
    this.eventsFunction = `iii-bridge::${options.nodeId}::state-events::${randomUUID()}`;
  }

  /** Hands every change on the remote engine to `onEvent`. */
  watch(onEvent: (event: StateEvent) => void): void {
    this.remote.serve(
      this.eventsFunction,
      async (payload) => {
        onEvent(payload as unknown as StateEvent);
        return undefined;
      },
      'State changes of the bridged engine, mirrored',
    );
    this.remote.bind(this.eventsFunction, 'state', this.eventsFunction, {});
  }

  async open(): Promise<void> {
    this.remote.start();
  }

  async close(): Promise<void> {
    await this.remote.close();
  }

  async get(scope: string, key: string): Promise<Json | undefined> {
    return this.call('state::get', { scope, key });
  }

  async set(scope: string, key: string, value: Json, maxValueBytes: number | undefined): Promise<Json | undefined> {
    serializeWithin(value, maxValueBytes);
    return oldValue(await this.call('state::set', { scope, key, value }));
  }

  async delete(scope: string, key: string): Promise<Json | undefined> {
    return this.call('state::delete', { scope, key });
  }

  async update(scope: string, key: string, ops: Json, _maxValueBytes: number | undefined): Promise<StateUpdateOutcome> {
    const result = ((await this.call('state::update', { scope, key, ops })) ?? {}) as Record<string, Json>;
    const old = result['old_value'];
    return {
      old_value: old === null ? undefined : old,
      new_value: result['new_value'] ?? null,
      errors: (result['errors'] ?? []) as unknown as UpdateOpError[],
    };
  }

  async list(scope: string): Promise<Json[]> {
    return ((await this.call('state::list', { scope })) ?? []) as Json[];
  }

  async listGroups(): Promise<string[]> {
    const result = (await this.call('state::list_groups', {})) as { groups?: string[] } | undefined;
    return result?.groups ?? [];
  }

  private call(functionId: string, data: Json): Promise<Json | undefined> {
    return this.remote.call(functionId, data, DEFAULT_BRIDGE_TIMEOUT_MS);
  }
}

/** `{old_value}` of a set: null (the remote's "nothing before") reads as no old value. */
function oldValue(result: Json | undefined): Json | undefined {
  const old = (result as Record<string, Json> | undefined)?.['old_value'];
  return old === null ? undefined : old;
}
