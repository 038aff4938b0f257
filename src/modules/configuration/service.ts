import type { ValidateFunction } from 'ajv';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { Logger } from '../../observability/logger';
import type { ConfigurationMeta, ConfigurationStore } from './adapters/store';
import { ConfigurationErrorCode, checkId } from './errors';
import { expandValue } from './expand';
import { checkValue, compileSchema } from './schema-check';
import type { ConfigurationEventType, ConfigurationTriggers } from './triggers';

export interface Registration extends ConfigurationMeta {
  id: string;
  initialValue?: Json;
}

/**
 * The configuration registry over a store: validation, `${VAR}` expansion on read, and one
 * change event per accepted change (calls and outside edits alike).
 */
/** What the `configuration::*` functions call: this engine's registry, or the bridged engine's. */
export interface ConfigurationApi {
  register(registration: Registration): Promise<Json>;
  set(id: string, value: Json): Promise<Json>;
  get(id: string, raw: boolean): Promise<Json>;
  schema(id: string): Promise<Json>;
  list(): Promise<Json>;
}

/** Checks a value of a built-in id (a worker's settings); throws SCHEMA_INVALID with the reason. */
export type BuiltinCheck = (value: Json) => void;

export class ConfigurationService implements ConfigurationApi {
  /** Compiled schemas by id, with the schema text they were compiled from. */
  private readonly validators = new Map<string, { text: string; validate: ValidateFunction }>();
  /** Ids the engine registered for itself, checked by their own validator instead of ajv. */
  private readonly builtins = new Map<string, BuiltinCheck>();
  /** In-process listeners of every accepted change (the settings reloader). */
  private readonly listeners: Array<(id: string) => void> = [];

  constructor(
    private readonly store: ConfigurationStore,
    private readonly triggers: ConfigurationTriggers,
    private readonly logger: Logger,
  ) {}

  /** Registers an id of the engine's own (a worker's settings), its values checked by `check`. */
  async registerBuiltin(id: string, meta: ConfigurationMeta, check: BuiltinCheck): Promise<void> {
    this.builtins.set(id, check);
    await this.store.putMeta(id, meta);
  }

  onChange(listener: (id: string) => void): void {
    this.listeners.push(listener);
  }

  async register({ id, initialValue, ...meta }: Registration): Promise<Json> {
    if (this.builtins.has(id))
      throw new EngineError(
        ConfigurationErrorCode.invalidId,
        `'${id}' holds the settings of the engine's ${id} worker; pick another id.`,
      );
    checkId(id);
    const validate = this.validator(id, meta.schema);
    if (initialValue !== undefined) checkValue(id, validate, expandValue(initialValue));
    const existed = await this.adapter(() => this.store.putMeta(id, meta));
    const old = await this.adapter(() => this.store.value(id));
    if (initialValue !== undefined) await this.adapter(() => this.store.putValue(id, initialValue));
    const value = initialValue ?? old ?? null;
    if (initialValue === undefined && old !== undefined && !validate(expandValue(old))) {
      this.logger.warn(
        { id },
        `configuration: the stored value of '${id}' does not match the schema just registered; it is kept`,
      );
    }
    this.fire(
      existed ? 'configuration:updated' : 'configuration:registered',
      id,
      meta,
      existed ? old : undefined,
      value,
    );
    return { id, ...describe(meta), value: expandValue(value) };
  }

  async set(id: string, value: Json): Promise<Json> {
    checkId(id);
    const meta = await this.adapter(() => this.store.meta(id));
    if (meta === undefined) {
      const stored = await this.adapter(() => this.store.value(id));
      if (stored === undefined)
        throw new EngineError(
          ConfigurationErrorCode.notRegistered,
          `Configuration '${id}' is not registered: a worker must call configuration::register first.`,
        );
      throw new EngineError(
        ConfigurationErrorCode.schemaUnavailable,
        `Configuration '${id}' has a stored value but no schema yet: its worker has not registered it since the engine started.`,
      );
    }
    this.check(id, meta, value);
    const old = await this.adapter(() => this.store.putValue(id, value));
    this.fire('configuration:updated', id, meta, old, value);
    return { old_value: old === undefined ? null : expandValue(old), new_value: expandValue(value) };
  }

  async get(id: string, raw: boolean): Promise<Json> {
    checkId(id);
    const value = await this.adapter(() => this.store.value(id));
    if (value === undefined && (await this.adapter(() => this.store.meta(id))) === undefined) throw notFound(id);
    const stored = value ?? null;
    return { id, value: raw ? stored : expandValue(stored) };
  }

  async schema(id: string): Promise<Json> {
    checkId(id);
    const meta = await this.adapter(() => this.store.meta(id));
    if (meta !== undefined) return { id, ...describe(meta) };
    if ((await this.adapter(() => this.store.value(id))) === undefined) throw notFound(id);
    throw new EngineError(
      ConfigurationErrorCode.schemaUnavailable,
      `Configuration '${id}' has a stored value but no schema yet: its worker has not registered it since the engine started.`,
    );
  }

  /** Sorted by id, never with values; an id known only by its stored value has an empty description and a null schema. */
  async list(): Promise<Json> {
    const entries = await this.adapter(() => this.store.entries());
    entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      configurations: entries.map(({ id, meta }) => ({
        id,
        ...describe(meta ?? { name: id, description: '', schema: null }),
      })),
    };
  }

  /** An edit made outside the engine: validated against the known schema, then taken in (or refused, keeping the last good value). */
  async outsideChange(id: string, value: Json | undefined): Promise<void> {
    const meta = await this.store.meta(id);
    if (value !== undefined && meta !== undefined) {
      try {
        this.check(id, meta, value);
      } catch (err) {
        this.logger.warn(
          { id, reason: (err as Error).message },
          `configuration: an outside edit of '${id}' was refused; the last good value stays`,
        );
        return;
      }
    }
    const old = await this.store.value(id);
    this.store.adopt(id, value);
    const about = meta ?? { name: id, description: '', schema: null };
    if (value === undefined) this.fire('configuration:deleted', id, about, old, null);
    else this.fire(old === undefined ? 'configuration:registered' : 'configuration:updated', id, about, old, value);
    this.logger.info(
      { id, change: value === undefined ? 'removed' : 'edited' },
      `configuration: '${id}' changed outside the engine`,
    );
  }

  /** Deletes an id nobody watches any more (ttl_seconds). */
  async expire(id: string): Promise<void> {
    try {
      const removed = await this.store.remove(id);
      this.validators.delete(id);
      if (removed === undefined) return;
      this.fire(
        'configuration:deleted',
        id,
        removed.meta ?? { name: id, description: '', schema: null },
        removed.value,
        null,
      );
      this.logger.info({ id }, `configuration: '${id}' deleted, unwatched for ttl_seconds`);
    } catch (err) {
      this.logger.warn({ err, id }, `configuration: deleting the unwatched '${id}' failed`);
    }
  }

  private check(id: string, meta: ConfigurationMeta, value: Json): void {
    const builtin = this.builtins.get(id);
    if (builtin) builtin(expandValue(value));
    else checkValue(id, this.validator(id, meta.schema), expandValue(value));
  }

  private fire(
    eventType: ConfigurationEventType,
    id: string,
    meta: ConfigurationMeta,
    old: Json | undefined,
    value: Json,
  ): void {
    for (const listener of this.listeners) listener(id);
    this.triggers.dispatch({
      event_type: eventType,
      id,
      name: meta.name,
      description: meta.description,
      schema: meta.schema,
      old_value: old === undefined ? null : expandValue(old),
      new_value: expandValue(value),
    });
  }

  private validator(id: string, schema: Json): ValidateFunction {
    const text = JSON.stringify(schema);
    const held = this.validators.get(id);
    if (held?.text === text) return held.validate;
    const validate = compileSchema(id, schema);
    this.validators.set(id, { text, validate });
    return validate;
  }

  /** A store failure becomes ADAPTER_ERROR; our own errors pass through. */
  private async adapter<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError(
        ConfigurationErrorCode.adapterError,
        `The configuration store failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

function describe(meta: ConfigurationMeta): Record<string, Json> {
  const out: Record<string, Json> = { name: meta.name, description: meta.description, schema: meta.schema };
  if (meta.metadata !== undefined) out['metadata'] = meta.metadata;
  return out;
}

function notFound(id: string): EngineError {
  return new EngineError(
    ConfigurationErrorCode.notFound,
    `Configuration '${id}' is not registered and has no stored value.`,
  );
}
