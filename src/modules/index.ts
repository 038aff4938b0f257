import type { EngineConfig } from '../config/types';
import { resolveModuleConfig, type ModuleId } from '../config/workers';
import { ConfigurationModule } from './configuration';
import { CronModule } from './cron';
import { EngineFunctionsModule } from './engine-functions';
import { ExecModule } from './exec';
import { HttpModule } from './http';
import type { EngineModule } from './module';
import { ObservabilityModule } from './observability';
import { PubSubModule } from './pubsub';
import { QueueModule } from './queue';
import { StateModule } from './state';
import { StreamModule } from './stream';
import type { Engine } from '../engine/engine';

type ModuleFactory = (config: Record<string, unknown>) => EngineModule;

/** The optional modules, in start order (a module may call the ones before it). */
const OPTIONAL: ReadonlyArray<[ModuleId, ModuleFactory]> = [
  ['state', (c) => new StateModule(c)],
  ['stream', (c) => new StreamModule(c)],
  ['pubsub', (c) => new PubSubModule(c)],
  ['queue', (c) => new QueueModule(c)],
  ['cron', (c) => new CronModule(c)],
  ['http', (c) => new HttpModule(c)],
  // Last: its commands start once the engine is ready, and are stopped first (modules stop in reverse).
  ['exec', (c) => new ExecModule(c)],
];

/** `configuration` is mandatory; in cluster mode its default store is Redis, shared by every node. */
function configurationModule(config: EngineConfig): EngineModule {
  const block = config.modules.configuration?.config ?? {};
  const clustered = config.cluster.redisUrl !== undefined && !('adapter' in block);
  return new ConfigurationModule(resolveModuleConfig('configuration', clustered ? { ...block, adapter: { name: 'redis' } } : block));
}

/** Modules whose storage follows the cluster: in cluster mode their default adapter is `redis`. */
const CLUSTER_BACKED: readonly ModuleId[] = ['state', 'stream', 'pubsub', 'queue', 'cron'];

/**
 * The modules one node runs: the mandatory ones, then every optional module the config enables,
 * each given its block with defaults filled in. In cluster mode a module whose block names no
 * adapter uses Redis (the cluster's URL and key prefix), so N nodes share one state.
 */
export function createModules(engine: Engine, config: EngineConfig): EngineModule[] {
  // iii-observability is mandatory: it gets its block with defaults filled in.
  const observability = new ObservabilityModule(resolveModuleConfig('observability', config.modules.observability?.config));
  const modules: EngineModule[] = [new EngineFunctionsModule(engine), observability, configurationModule(config)];
  for (const [id, create] of OPTIONAL) {
    const module = config.modules[id];
    if (!module?.enabled) continue;
    const clustered = config.cluster.redisUrl !== undefined && CLUSTER_BACKED.includes(id) && !('adapter' in module.config);
    const block = clustered ? { ...module.config, adapter: { name: 'redis' } } : module.config;
    modules.push(create(resolveModuleConfig(id, block)));
  }
  return modules;
}
