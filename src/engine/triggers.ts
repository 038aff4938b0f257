import { EngineError, ErrorCode } from '../protocol/errors';
import type {
  ErrorBody,
  Json,
  RegisterTrigger,
  TriggerRegistrationResult,
  UnregisterTrigger,
} from '../protocol/messages';
import type { Logger } from '../observability/logger';
import { bareId } from '../registry/namespaces';
import type { Registry } from '../registry/registry';
import type { RegistryDelta, RegistryEntry, TriggerEntry, TriggerTypeEntry } from '../registry/types';

/** An in-process module that provides a trigger type. Throwing refuses a binding. */
export interface TriggerProvider {
  registerTrigger(trigger: TriggerEntry): void | Promise<void>;
  unregisterTrigger(trigger: TriggerEntry): void | Promise<void>;
}

export interface TriggerBinding {
  id: string;
  trigger_type: string;
  function_id: string;
  config: Json;
  metadata?: Json;
}

/** How the trigger manager reaches a connected worker. */
export interface TriggerPeer {
  send(message: RegisterTrigger | UnregisterTrigger | TriggerRegistrationResult): boolean;
}

/**
 * The binding state machine (docs/PROTOCOL.md): a binding is `live` once delivered to its type's
 * provider, `parked` while the type is missing, its provider left, or the provider refused it.
 * Parked bindings are delivered when the type (re)appears; a leaving owner takes its bindings
 * with it and tells their providers.
 */
export class TriggerManager {
  private readonly providers = new Map<string, TriggerProvider>();
  /** Bindings whose worker provider's answer someone awaits (`engine::register_trigger`). */
  private readonly ackWaiters = new Map<string, (error: ErrorBody | undefined) => void>();

  /** Bindings owned by other nodes that this node's providers hold (cluster mode). */
  private readonly remoteDelivered = new Set<string>();
  /** Tells another node a provider's answer to one of its bindings (cluster mode). */
  forwardResult: (nodeId: string, triggerId: string, error: ErrorBody | undefined) => void = () => undefined;

  constructor(
    private readonly registry: Registry,
    private readonly nodeId: string,
    private readonly peer: (workerId: string) => TriggerPeer | undefined,
    private readonly logger: Logger,
  ) {
    registry.on('delta', this.onClusterDelta);
  }

  /**
   * Registers a binding. Refusal by an in-process provider throws `trigger_registration_failed`
   * and nothing is stored; a missing type parks the binding silently. With `awaitAckMs`, a
   * worker provider's refusal within that time throws too (its silence counts as acceptance).
   */
  async register(
    binding: TriggerBinding,
    ownerWorkerId: string | undefined,
    awaitAckMs?: number,
  ): Promise<TriggerEntry> {
    const previous = this.registry.trigger(binding.id);
    if (previous) await this.unregister(previous.id);
    const entry: TriggerEntry = { ...binding, nodeId: this.nodeId, state: 'parked' };
    if (ownerWorkerId !== undefined) entry.ownerWorkerId = ownerWorkerId;
    const type = this.registry.triggerType(binding.trigger_type);
    if (type && (await this.activate(type, entry))) entry.state = 'live';
    this.registry.apply({ op: 'trigger.put', trigger: entry });
    const workerProvided = type !== undefined && !this.providers.has(providerKey(type));
    if (workerProvided && entry.state === 'live' && awaitAckMs !== undefined) {
      // The answer arrives in a later frame, so waiting starts safely after the send.
      const error = await this.waitForAck(entry.id, awaitAckMs);
      if (error) {
        // The caller never learns the id of a refused binding, so nothing may be left behind.
        this.registry.apply({ op: 'trigger.remove', id: entry.id });
        throw new EngineError(ErrorCode.triggerRegistrationFailed, `${error.code}: ${error.message}`);
      }
    }
    return entry;
  }

  /** Removes a binding from whichever state it is in; tells a worker provider. */
  async unregister(id: string): Promise<boolean> {
    const entry = this.registry.trigger(id);
    if (!entry) return false;
    this.registry.apply({ op: 'trigger.remove', id });
    if (entry.state !== 'live') return true;
    const type = this.registry.triggerType(entry.trigger_type);
    if (!type) return true;
    const provider = this.providers.get(providerKey(type));
    if (provider) {
      try {
        await provider.unregisterTrigger(entry);
      } catch (err) {
        throw new EngineError(ErrorCode.unregisterFailed, EngineError.from(err).message);
      }
    } else {
      this.sendToProvider(type, { type: 'unregistertrigger', id: entry.id, trigger_type: bareId(entry.trigger_type) });
    }
    return true;
  }

  /**
   * Registers a trigger type (replacing the previous provider), then replays its live bindings
   * to the new provider and delivers its parked ones.
   */
  async registerType(type: TriggerTypeEntry, provider?: TriggerProvider): Promise<void> {
    const previous = this.registry.triggerType(type.id);
    if (previous) this.providers.delete(providerKey(previous));
    if (provider) this.providers.set(providerKey(type), provider);
    this.registry.apply({ op: 'triggertype.put', type });
    for (const binding of this.registry.triggersOfType(type.id)) {
      if (binding.nodeId !== this.nodeId) {
        await this.deliverRemote(type, binding);
        continue;
      }
      if (
        binding.state === 'parked' &&
        binding.ownerWorkerId !== undefined &&
        !this.registry.worker(binding.ownerWorkerId)
      ) {
        this.registry.apply({ op: 'trigger.remove', id: binding.id });
        continue;
      }
      await this.deliver(type, binding);
    }
  }

  /** Removes a trigger type its provider no longer offers and parks the bindings of others. */
  unregisterType(id: string, workerId: string): void {
    const type = this.registry.triggerType(id);
    if (!type || type.workerId !== workerId) return;
    this.providers.delete(providerKey(type));
    this.registry.apply({ op: 'triggertype.remove', id, workerId });
    this.parkType(id);
  }

  /** The bindings of a type that went away wait for it; remote ones are their node's business. */
  private parkType(typeId: string): void {
    for (const binding of this.registry.triggersOfType(typeId)) {
      if (binding.nodeId !== this.nodeId) this.remoteDelivered.delete(binding.id);
      else if (binding.state === 'live')
        this.registry.apply({ op: 'trigger.put', trigger: { ...binding, state: 'parked' } });
    }
  }

  /** A provider's answer to a forwarded binding: a refusal parks it and reaches its owner. */
  providerResult(fromWorkerId: string, result: TriggerRegistrationResult): void {
    const binding = this.registry.trigger(result.id);
    const type = binding && this.registry.triggerType(binding.trigger_type);
    if (!binding || !type || type.workerId !== fromWorkerId) return;
    if (binding.nodeId !== this.nodeId) {
      if (result.error) this.remoteDelivered.delete(binding.id);
      this.forwardResult(binding.nodeId, binding.id, result.error);
      return;
    }
    this.ackWaiters.get(result.id)?.(result.error);
    if (result.error) this.park(binding, result.error);
  }

  /** A provider on another node answered a binding of this node. */
  resultFromPeer(triggerId: string, error: ErrorBody | undefined): void {
    const binding = this.registry.trigger(triggerId);
    if (!binding || binding.nodeId !== this.nodeId) return;
    this.ackWaiters.get(triggerId)?.(error);
    if (error) this.park(binding, error);
  }

  /**
   * Cluster mode: the mirror changed on another node's behalf. Bindings of other nodes whose type
   * is provided here are handed to the provider here (each binding is delivered by the node of
   * its provider); a type appearing or leaving elsewhere changes the state of this node's bindings.
   */
  private readonly onClusterDelta = (delta: RegistryDelta, entry: RegistryEntry): void => {
    if (entry.nodeId === this.nodeId) return;
    switch (delta.op) {
      case 'trigger.put': {
        const type = this.registry.triggerType(delta.trigger.trigger_type);
        if (type && type.nodeId === this.nodeId && !this.remoteDelivered.has(delta.trigger.id))
          void this.deliverRemote(type, delta.trigger);
        return;
      }
      case 'trigger.remove':
        if (this.remoteDelivered.delete((entry as TriggerEntry).id)) void this.withdrawRemote(entry as TriggerEntry);
        return;
      case 'triggertype.put':
        for (const binding of this.registry.triggersOfType(delta.type.id, 'parked')) {
          if (binding.nodeId === this.nodeId)
            this.registry.apply({ op: 'trigger.put', trigger: { ...binding, state: 'live' } });
        }
        return;
      case 'triggertype.remove':
        if (!this.registry.triggerType(delta.id)) this.parkType(delta.id);
        return;
      default:
        return;
    }
  };

  private async deliverRemote(type: TriggerTypeEntry, binding: TriggerEntry): Promise<void> {
    this.remoteDelivered.add(binding.id);
    try {
      if (!(await this.activate(type, binding))) this.remoteDelivered.delete(binding.id);
    } catch (err) {
      this.remoteDelivered.delete(binding.id);
      this.forwardResult(binding.nodeId, binding.id, EngineError.from(err).toBody());
    }
  }

  private async withdrawRemote(binding: TriggerEntry): Promise<void> {
    const type = this.registry.triggerType(binding.trigger_type);
    if (!type || type.nodeId !== this.nodeId) return;
    const provider = this.providers.get(providerKey(type));
    try {
      if (provider) await provider.unregisterTrigger(binding);
      else
        this.sendToProvider(type, {
          type: 'unregistertrigger',
          id: binding.id,
          trigger_type: bareId(binding.trigger_type),
        });
    } catch (err) {
      this.logger.warn({ err, trigger: binding.id }, 'provider failed to unregister a binding of another node');
    }
  }

  private waitForAck(id: string, timeoutMs: number): Promise<ErrorBody | undefined> {
    return new Promise((resolve) => {
      const done = (error: ErrorBody | undefined) => {
        clearTimeout(timer);
        this.ackWaiters.delete(id);
        resolve(error);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.ackWaiters.set(id, done);
    });
  }

  /** A worker left: its bindings go (their providers told), the types it provided are removed. */
  async workerGone(workerId: string): Promise<void> {
    for (const binding of [...this.registry.triggers()]) {
      if (binding.ownerWorkerId !== workerId) continue;
      try {
        await this.unregister(binding.id);
      } catch (err) {
        this.logger.warn({ err, trigger: binding.id }, 'provider failed to unregister a binding of a departed worker');
      }
    }
    for (const type of [...this.registry.triggerTypes()]) {
      if (type.workerId === workerId) this.unregisterType(type.id, workerId);
    }
  }

  private async deliver(type: TriggerTypeEntry, binding: TriggerEntry): Promise<void> {
    let live: boolean;
    try {
      live = await this.activate(type, binding);
    } catch (err) {
      this.park(binding, EngineError.from(err).toBody());
      return;
    }
    const state = live ? 'live' : 'parked';
    if (binding.state !== state) this.registry.apply({ op: 'trigger.put', trigger: { ...binding, state } });
  }

  /**
   * Hands a binding to its type's provider: an in-process provider accepts it or throws
   * `trigger_registration_failed`; a worker provider is sent it (false when it cannot be reached).
   */
  private async activate(type: TriggerTypeEntry, binding: TriggerEntry): Promise<boolean> {
    // A provider on another node is handed the binding by its own node (onClusterDelta there).
    if (type.nodeId !== this.nodeId) return true;
    const provider = this.providers.get(providerKey(type));
    if (!provider) return this.sendToProvider(type, registerMessage(binding));
    try {
      await provider.registerTrigger(binding);
      return true;
    } catch (err) {
      throw new EngineError(ErrorCode.triggerRegistrationFailed, EngineError.from(err).message);
    }
  }

  private park(binding: TriggerEntry, error: ErrorBody): void {
    this.registry.apply({ op: 'trigger.put', trigger: { ...binding, state: 'parked' } });
    if (binding.ownerWorkerId === undefined) return;
    this.peer(binding.ownerWorkerId)?.send({
      type: 'triggerregistrationresult',
      id: binding.id,
      trigger_type: binding.trigger_type,
      function_id: binding.function_id,
      error,
    });
  }

  private sendToProvider(type: TriggerTypeEntry, message: RegisterTrigger | UnregisterTrigger): boolean {
    return this.peer(type.workerId)?.send(message) ?? false;
  }
}

function providerKey(type: TriggerTypeEntry): string {
  return `${type.workerId}\u0000${type.id}`;
}

/** A binding as its provider worker sees it: bare ids (the namespaces are the engine's business). */
function registerMessage(binding: TriggerEntry): RegisterTrigger {
  const message: RegisterTrigger = {
    type: 'registertrigger',
    id: binding.id,
    trigger_type: bareId(binding.trigger_type),
    function_id: bareId(binding.function_id),
    config: binding.config,
  };
  if (binding.metadata !== undefined) message.metadata = binding.metadata;
  return message;
}
