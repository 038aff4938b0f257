import { createHash } from 'node:crypto';
import { EngineError, ErrorCode } from '../protocol/errors';
import type { Json } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import type { TriggerEntry } from '../registry/types';
import type { CallRequest } from '../router/router';
import type { TriggerProvider } from './triggers';

/**
 * The config key (ours) with which a binding asks to fire on its own, once per binding, as every
 * binding did before binding groups: `fan_out: true`. Absent or false: the binding joins its group.
 */
export const FAN_OUT_KEY = 'fan_out';

/** What makes two bindings the same binding for the events they fire. */
export type GroupedFields = Pick<TriggerEntry, 'id' | 'trigger_type' | 'function_id' | 'config' | 'metadata'>;

/**
 * The binding group a binding belongs to (docs/PROTOCOL.md, "Bindings of a pool"): bindings with
 * the same trigger type, function, config (`fan_out` aside) and metadata fire once per event,
 * since the call goes to the function id and the router picks one pool member anyway. A fan-out
 * binding is a group of its own and its key is its id. The key is a bounded string free of
 * braces, so it can name a Redis hash-tagged key (the cron lock's).
 */
export function bindingGroupKey(binding: GroupedFields): string {
  if (fansOut(binding.config)) return binding.id;
  const config = isObject(binding.config) ? withoutKey(binding.config, FAN_OUT_KEY) : binding.config;
  const canonical = stableJson([binding.trigger_type, binding.function_id, config, binding.metadata ?? null]);
  return `group-${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
}

/** True when the config says `fan_out: true`; a `fan_out` that is not a boolean is refused. */
export function fansOut(config: Json): boolean {
  if (!isObject(config) || config[FAN_OUT_KEY] === undefined) return false;
  const value = config[FAN_OUT_KEY];
  if (typeof value !== 'boolean') {
    throw new EngineError(
      ErrorCode.invalidArguments,
      `\`${FAN_OUT_KEY}\` in a trigger config must be true (fire on every replica's binding) or false, got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/**
 * The call one event of a binding makes: to its function id, so that the router picks the pool
 * member (least in flight), or, for a fan-out binding, to the member that made the binding (when
 * it still serves the function): "every replica" means each replica gets its own binding's events.
 */
export function bindingCall(registry: Registry, binding: TriggerEntry, data: Json, metadata?: Json): CallRequest {
  const request: CallRequest = { functionId: binding.function_id, data };
  if (metadata !== undefined) request.metadata = metadata;
  if (binding.ownerWorkerId !== undefined && fansOut(binding.config)) {
    const own = registry.pool(binding.function_id).find((entry) => entry.workerId === binding.ownerWorkerId);
    if (own) request.pinned = own;
  }
  return request;
}

interface Group {
  /** Every binding of the group this provider holds, by id. */
  readonly members: Map<string, TriggerEntry>;
  /** The member the wrapped provider holds: the smallest id, so every node picks the same one. */
  current: TriggerEntry;
}

/**
 * Wraps an in-process trigger provider so that it fires each binding group once per event: of the
 * bindings of one group (the replicas of a worker each bind the same function the same way, with
 * ids of their own) only one, the group's current member, is handed to the wrapped provider; the
 * others wait as members and one of them takes over when it leaves. Fan-out bindings pass through.
 *
 * The current member is the smallest id, not the first to arrive, so that every node of a cluster
 * (each node's providers hold every binding of the cluster) hands the same binding to its provider:
 * a provider that fires only its own node's bindings (a mirrored adapter) then fires once in all.
 *
 * Registrations and removals run one at a time, since a hand-over spans two calls of the provider.
 */
export class BindingGroups implements TriggerProvider {
  private readonly groups = new Map<string, Group>();
  /** binding id -> the key of its group. */
  private readonly groupOf = new Map<string, string>();
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly provider: TriggerProvider) {}

  registerTrigger(binding: TriggerEntry): Promise<void> {
    return this.serial(() => this.add(binding));
  }

  unregisterTrigger(binding: TriggerEntry): Promise<void> {
    return this.serial(() => this.remove(binding.id));
  }

  /** The members of the group of `bindingId`, current one first (for tests and introspection). */
  membersOf(bindingId: string): string[] {
    const key = this.groupOf.get(bindingId);
    const group = key === undefined ? undefined : this.groups.get(key);
    if (!group) return [];
    return [group.current.id, ...[...group.members.keys()].filter((id) => id !== group.current.id).sort()];
  }

  private async add(binding: TriggerEntry): Promise<void> {
    const key = bindingGroupKey(binding);
    const previousKey = this.groupOf.get(binding.id);
    if (previousKey !== undefined && previousKey !== key) await this.remove(binding.id);
    const group = this.groups.get(key);
    if (!group) {
      // The first member is checked by the provider; the others have the same config.
      await this.provider.registerTrigger(binding);
      this.groups.set(key, { members: new Map([[binding.id, binding]]), current: binding });
      this.groupOf.set(binding.id, key);
      return;
    }
    if (group.current.id === binding.id) {
      // The current member again: the provider decides, as it would without groups.
      await this.provider.registerTrigger(binding);
      group.current = binding;
      group.members.set(binding.id, binding);
      return;
    }
    group.members.set(binding.id, binding);
    this.groupOf.set(binding.id, key);
    if (binding.id < group.current.id) {
      try {
        await this.handOver(group, binding);
      } catch (err) {
        group.members.delete(binding.id);
        this.groupOf.delete(binding.id);
        throw err;
      }
    }
  }

  private async remove(bindingId: string): Promise<void> {
    const key = this.groupOf.get(bindingId);
    const group = key === undefined ? undefined : this.groups.get(key);
    if (key === undefined || !group) return;
    this.groupOf.delete(bindingId);
    group.members.delete(bindingId);
    if (group.current.id !== bindingId) return;
    const next = smallest(group.members);
    if (!next) {
      this.groups.delete(key);
      await this.provider.unregisterTrigger(group.current);
      return;
    }
    await this.handOver(group, next);
  }

  /**
   * Makes `next` the member the provider holds. The previous one goes first, so that no event
   * between the two calls fires twice; if the provider refuses `next` (it accepted the same
   * config before, so only a provider with state of its own could), the previous one is put back
   * when it is still a member.
   */
  private async handOver(group: Group, next: TriggerEntry): Promise<void> {
    const previous = group.current;
    await this.provider.unregisterTrigger(previous);
    try {
      await this.provider.registerTrigger(next);
      group.current = next;
    } catch (err) {
      if (group.members.has(previous.id)) await this.provider.registerTrigger(previous);
      throw err;
    }
  }

  private serial(op: () => Promise<void>): Promise<void> {
    const run = this.tail.then(op);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function smallest(members: Map<string, TriggerEntry>): TriggerEntry | undefined {
  let best: TriggerEntry | undefined;
  for (const member of members.values()) if (best === undefined || member.id < best.id) best = member;
  return best;
}

/** JSON with object keys sorted at every depth: equal values give equal text. */
function stableJson(value: Json | undefined): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => stableJson(item)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(value[k])}`).join(',')}}`;
}

function withoutKey(fields: Record<string, Json>, key: string): Record<string, Json> {
  const { [key]: _dropped, ...rest } = fields;
  return rest;
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
