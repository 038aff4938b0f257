import type { TriggerProvider } from '../../engine/triggers';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';

export const CONFIGURATION_EVENT_TYPES = [
  'configuration:registered',
  'configuration:updated',
  'configuration:deleted',
] as const;
export type ConfigurationEventType = (typeof CONFIGURATION_EVENT_TYPES)[number];

/** What a `configuration` handler receives (values expanded; `old_value` null on registered, `new_value` null on deleted). */
export interface ConfigurationEvent {
  event_type: ConfigurationEventType;
  id: string;
  name: string;
  description: string;
  schema: Json;
  old_value: Json;
  new_value: Json;
}

interface Filter {
  configurationId?: string;
  eventTypes?: ReadonlySet<string>;
  conditionFunctionId?: string;
}

export const CONFIGURATION_TRIGGER_CONFIG_SCHEMA: Json = {
  type: 'object',
  properties: {
    configuration_id: { type: 'string' },
    event_types: { type: 'array', items: { enum: [...CONFIGURATION_EVENT_TYPES] } },
    condition_function_id: { type: 'string' },
  },
};

export const CONFIGURATION_EVENT_SCHEMA: Json = {
  type: 'object',
  required: ['type', 'event_type', 'id', 'old_value', 'new_value'],
  properties: {
    type: { const: 'configuration' },
    event_type: { enum: [...CONFIGURATION_EVENT_TYPES] },
    id: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    schema: {},
    old_value: { description: 'null for configuration:registered' },
    new_value: { description: 'null for configuration:deleted' },
  },
};

/**
 * The `configuration` trigger type. A change fires on the node that made it (a call, or an
 * outside edit of a file this node watches), for every binding in the cluster: each node's
 * provider holds every binding, so a change fires once cluster-wide.
 *
 * With `ttlSeconds` > 0, an id whose last binding naming it (`configuration_id`) went away is
 * handed to `expire` that many seconds later, unless a binding named it again meanwhile.
 */
export class ConfigurationTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { binding: TriggerEntry; filter: Filter }>();
  private readonly expiring = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly host: ModuleHost,
    private readonly ttlSeconds: number,
    private readonly expire: (id: string) => void,
  ) {}

  registerTrigger(binding: TriggerEntry): void {
    const filter = readFilter(binding.config);
    this.bindings.set(binding.id, { binding, filter });
    if (filter.configurationId !== undefined) {
      clearTimeout(this.expiring.get(filter.configurationId));
      this.expiring.delete(filter.configurationId);
    }
  }

  unregisterTrigger(binding: TriggerEntry): void {
    const held = this.bindings.get(binding.id);
    this.bindings.delete(binding.id);
    const id = held?.filter.configurationId;
    if (id === undefined || this.ttlSeconds <= 0 || this.watched(id)) return;
    const timer = setTimeout(() => {
      this.expiring.delete(id);
      if (!this.watched(id)) this.expire(id);
    }, this.ttlSeconds * 1000);
    timer.unref();
    this.expiring.set(id, timer);
  }

  /** Hands one change to the matching bindings in the background, one after another. */
  dispatch(event: ConfigurationEvent): void {
    this.fire(event, false);
  }

  /**
   * A change the bridged engine reported: every node of a cluster receives each report, so each
   * fires only the bindings it owns.
   */
  mirror(event: ConfigurationEvent): void {
    this.fire(event, true);
  }

  private fire(event: ConfigurationEvent, ownBindingsOnly: boolean): void {
    const matching = [...this.bindings.values()].filter(
      ({ binding, filter }) => (!ownBindingsOnly || binding.nodeId === this.host.nodeId) && matches(filter, event),
    );
    if (matching.length === 0) return;
    const { event_type, id, name, description, schema, old_value, new_value } = event;
    void this.deliver(matching, {
      type: 'configuration',
      event_type,
      id,
      name,
      description,
      schema,
      old_value,
      new_value,
    });
  }

  clear(): void {
    this.bindings.clear();
    for (const timer of this.expiring.values()) clearTimeout(timer);
    this.expiring.clear();
  }

  private watched(id: string): boolean {
    for (const { filter } of this.bindings.values()) if (filter.configurationId === id) return true;
    return false;
  }

  private async deliver(matching: Array<{ binding: TriggerEntry; filter: Filter }>, payload: Json): Promise<void> {
    for (const { binding, filter } of matching) {
      try {
        if (!(await conditionPasses(this.host, filter.conditionFunctionId, payload, binding.metadata))) continue;
        await this.host.invoke(
          binding.metadata === undefined
            ? { functionId: binding.function_id, data: payload }
            : { functionId: binding.function_id, data: payload, metadata: binding.metadata },
        );
      } catch (err) {
        this.host.logger.warn(
          { err, trigger: binding.id, functionId: binding.function_id },
          'configuration trigger handler failed',
        );
      }
    }
  }
}

function matches(filter: Filter, event: ConfigurationEvent): boolean {
  return (
    (filter.configurationId === undefined || filter.configurationId === event.id) &&
    (filter.eventTypes === undefined || filter.eventTypes.has(event.event_type))
  );
}

function readFilter(config: Json): Filter {
  if (config === null || config === undefined) return {};
  if (typeof config !== 'object' || Array.isArray(config))
    throw refuse(
      `must be an object {configuration_id?, event_types?, condition_function_id?}, got ${Array.isArray(config) ? 'an array' : typeof config}`,
    );
  const filter: Filter = {};
  const id = optString(config, 'configuration_id');
  const condition = optString(config, 'condition_function_id');
  if (id !== undefined) filter.configurationId = id;
  if (condition !== undefined) filter.conditionFunctionId = condition;
  const types = config['event_types'];
  if (types !== undefined && types !== null) {
    const known: readonly string[] = CONFIGURATION_EVENT_TYPES;
    if (!Array.isArray(types) || types.some((t) => typeof t !== 'string' || !known.includes(t))) {
      throw refuse(`event_types must be a list of ${CONFIGURATION_EVENT_TYPES.join(', ')}`);
    }
    filter.eventTypes = new Set(types as string[]);
  }
  return filter;
}

function optString(fields: Record<string, Json>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw refuse(`${name} must be a string, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  return value;
}

function refuse(detail: string): EngineError {
  return new EngineError(ErrorCode.invalidArguments, `A \`configuration\` trigger config ${detail}.`);
}
