import { resolve } from 'node:path';
import { redisTarget } from '../../cluster/redis-target';
import { validateBlock } from '../../config/validate';
import { workerSpec, type ModuleId } from '../../config/workers';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { FsConfigurationStore } from './adapters/fs';
import { MemoryConfigurationStore } from './adapters/memory';
import { RedisConfigurationStore } from './adapters/redis';
import type { ConfigurationStore } from './adapters/store';
import { ConfigurationErrorCode } from './errors';
import { BridgedConfiguration } from './bridge';
import { CONFIGURATION_CHANGED } from '../../engine/engine';
import { ConfigurationService, type ConfigurationApi } from './service';
import { CONFIGURATION_EVENT_SCHEMA, CONFIGURATION_TRIGGER_CONFIG_SCHEMA, ConfigurationTriggers } from './triggers';

const MODULE = 'configuration';
/** The original's store directory, and the one it used before (moved over once). */
export const DEFAULT_DIRECTORY = './config';
const OLD_DIRECTORY = './data/configuration';
/** The original's default `bridge_url`. */
const DEFAULT_BRIDGE_URL = 'ws://localhost:49134';

/**
 * `configuration` (mandatory): named settings with JSON Schemas, `configuration::register|set|
 * get|list|schema`, and the `configuration` trigger type firing on every change. Adapters: `fs`
 * (default; `<directory>/<id>.yaml`, watched) and, ours, `redis` (the default in cluster mode, so
 * every node sees the same values) and `memory` (tests, embedded engines).
 */
export class ConfigurationModule implements EngineModule {
  readonly name = MODULE;
  private store: ConfigurationStore | undefined;
  private bridged: BridgedConfiguration | undefined;
  private triggers: ConfigurationTriggers | undefined;

  constructor(private readonly config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    const block = this.config['adapter'] as { name: string; config?: Record<string, unknown> | null };
    if (block.name === 'bridge') return this.startBridged(host, block.config ?? {});
    const store = createStore(block.name, block.config ?? {}, host);
    const triggers = new ConfigurationTriggers(
      host,
      this.config['ttl_seconds'] as number,
      (id) => void service.expire(id),
    );
    const service = new ConfigurationService(store, triggers, host.logger);
    await store.open(
      (id, value) =>
        void service
          .outsideChange(id, value)
          .catch((err) => host.logger.warn({ err, id }, 'configuration: taking in an outside edit failed')),
    );
    this.store = store;
    this.triggers = triggers;
    // Only the fs store is where the engine reads workers' settings at boot and on reload.
    if (block.name === 'fs') await registerWorkerSettings(host, service);
    service.onChange((id) => host.events.emit(CONFIGURATION_CHANGED, id));
    registerFunctions(host, service);
    await registerTriggerType(host, triggers);
  }

  /** The `bridge` adapter: the other engine holds everything (ttl_seconds is its business). */
  private async startBridged(host: ModuleHost, options: Record<string, unknown>): Promise<void> {
    if ((this.config['ttl_seconds'] as number) > 0)
      host.logger.warn(
        'configuration: ttl_seconds does not apply with the bridge adapter (the other engine keeps the values; it cannot be asked to delete them)',
      );
    const triggers = new ConfigurationTriggers(host, 0, () => undefined);
    const token = typeof options['auth_token'] === 'string' ? options['auth_token'] : process.env['III_BRIDGE_TOKEN'];
    const url = typeof options['bridge_url'] === 'string' ? options['bridge_url'] : DEFAULT_BRIDGE_URL;
    this.bridged = new BridgedConfiguration(
      { url, nodeId: host.nodeId, logger: host.logger, ...(token ? { token } : {}) },
      triggers,
    );
    this.triggers = triggers;
    registerFunctions(host, this.bridged);
    await registerTriggerType(host, triggers);
  }

  async stop(): Promise<void> {
    this.triggers?.clear();
    await this.store?.close();
    await this.bridged?.close();
    this.store = undefined;
    this.bridged = undefined;
  }
}

/**
 * Each listed built-in worker's settings are an id of their own, named as the worker is listed
 * (`iii-http`, `http`, ...), as iii 0.21+ keeps them: `configuration::set` checks a value as a
 * config.yaml block and stores it in `<directory>/<name>.yaml`, which the engine reads at boot and
 * applies live where it can (src/engine/settings-reloader.ts). Until set, their value is null:
 * the settings come from config.yaml. With the redis store (a cluster) each node's config file
 * is the place to change them (it is watched too).
 */
async function registerWorkerSettings(host: ModuleHost, service: ConfigurationService): Promise<void> {
  const listed = Object.entries(host.config.modules).filter(([, module]) => module.enabled);
  for (const [id, module] of listed) {
    const spec = workerSpec(id as ModuleId);
    if (spec.schema === null || id === 'configuration') continue;
    const schema = spec.schema;
    const name = module.entryName ?? spec.names[0];
    const meta = {
      name,
      description: `Settings of the ${name} worker, as its config.yaml block`,
      schema: { type: 'object' },
    };
    await service.registerBuiltin(name, meta, (value) => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new EngineError(
          ConfigurationErrorCode.schemaInvalid,
          `The settings of ${name} must be a mapping, as its config.yaml block.`,
        );
      }
      try {
        validateBlock(schema, value, { file: 'configuration', where: name });
      } catch (err) {
        throw new EngineError(ConfigurationErrorCode.schemaInvalid, (err as Error).message);
      }
    });
  }
}

async function registerTriggerType(host: ModuleHost, triggers: ConfigurationTriggers): Promise<void> {
  await host.registerTriggerType(
    MODULE,
    {
      id: 'configuration',
      description:
        'Fires when a configuration is registered, updated or deleted; config {configuration_id?, event_types?, condition_function_id?}',
      trigger_request_format: CONFIGURATION_TRIGGER_CONFIG_SCHEMA,
      call_request_format: CONFIGURATION_EVENT_SCHEMA,
    },
    triggers,
  );
}

function createStore(name: string, options: Record<string, unknown>, host: ModuleHost): ConfigurationStore {
  if (name === 'redis') {
    return new RedisConfigurationStore({
      ...redisTarget(MODULE, options, host.config.cluster),
      connectionName: `iii:${host.nodeId}:configuration`,
      logger: host.logger,
    });
  }
  if (name === 'memory') return new MemoryConfigurationStore();
  if (name === 'fs') {
    const directory = typeof options['directory'] === 'string' ? options['directory'] : DEFAULT_DIRECTORY;
    const isDefault = resolve(directory) === resolve(DEFAULT_DIRECTORY);
    return new FsConfigurationStore({
      directory,
      ...(isDefault ? { migrateFrom: OLD_DIRECTORY } : {}),
      logger: host.logger,
    });
  }
  throw new Error(
    `configuration: adapter '${name}' is not implemented; use fs (one node), redis (a cluster), memory or bridge.`,
  );
}

function registerFunctions(host: ModuleHost, service: ConfigurationApi): void {
  const fn = (id: string, description: string, handler: (input: Input, data: Record<string, Json>) => Promise<Json>) =>
    host.registerFunction(MODULE, { id, description }, (data) =>
      handler(new Input(id, data), data as Record<string, Json>),
    );

  fn(
    'configuration::register',
    'Register a configuration id with its JSON Schema; returns the stored entry',
    (input) => {
      const schema = input.raw('schema');
      if (schema === undefined) throw input.fail('missing field `schema`');
      const initialValue = input.raw('initial_value');
      const metadata = input.raw('metadata');
      return service.register({
        id: input.string('id'),
        name: input.optString('name') ?? input.string('id'),
        description: input.optString('description') ?? '',
        schema,
        ...(initialValue === undefined ? {} : { initialValue }),
        ...(metadata === undefined ? {} : { metadata }),
      });
    },
  );
  fn(
    'configuration::set',
    'Replace the value of a registered configuration; returns {old_value, new_value}',
    (input, data) => {
      const value = data['value']; // null is a value
      if (value === undefined) throw input.fail('missing field `value`');
      return service.set(input.string('id'), value);
    },
  );
  fn(
    'configuration::get',
    'Read a configuration value, ${VAR} expanded unless raw: true; returns {id, value}',
    (input) => service.get(input.string('id'), input.optBoolean('raw') ?? false),
  );
  fn('configuration::list', 'Every configuration, sorted by id, without values', () => service.list());
  fn('configuration::schema', 'The name, description and schema of a configuration', (input) =>
    service.schema(input.string('id')),
  );
}
