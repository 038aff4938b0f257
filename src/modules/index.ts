import type { EngineConfig } from '../config/types';
import { resolveModuleConfig, type ModuleId } from '../config/workers';
import { BridgeModule } from './bridge';
import { ConfigurationModule } from './configuration';
import { CronModule } from './cron';
import { EngineFunctionsModule } from './engine-functions';
import { ExecModule } from './exec';
import { HttpModule } from './http';
import type { EngineModule } from '../engine/module';
import { ObservabilityModule } from './observability';
import { PubSubModule } from './pubsub';
import { QueueModule } from './queue';
import { StateModule } from './state';
import { StreamModule } from './stream';
import type { Engine } from '../engine/engine';
import type { ModuleSet } from '../engine/module';
import { isClusterMode } from '../cluster/redis-target';

type ModuleFactory = (config: Record<string, unknown>) => EngineModule;

/** The optional modules, in start order (a module may call the ones before it). */
const OPTIONAL: ReadonlyArray<[ModuleId, ModuleFactory]> = [
  ['state', (c) => new StateModule(c)],
  ['stream', (c) => new StreamModule(c)],
  ['pubsub', (c) => new PubSubModule(c)],
  ['queue', (c) => new QueueModule(c)],
  ['cron', (c) => new CronModule(c)],
  ['http', (c) => new HttpModule(c)],
  ['bridge', (c) => new BridgeModule(c)],
  // Last: its commands start once the engine is ready, and are stopped first (modules stop in reverse).
  ['exec', (c) => new ExecModule(c)],
];

/** Modules whose storage follows the cluster: in cluster mode their default adapter is `redis`. */
const CLUSTER_BACKED: readonly ModuleId[] = ['state', 'stream', 'pubsub', 'queue', 'cron', 'configuration'];

/**
 * The block module `id` runs with: its config with defaults filled in. In cluster mode a module
 * whose block names no adapter uses Redis (the cluster's URL and key prefix), so N nodes share
 * one state; iii-bridge's url defaults to III_URL.
 */
function blockFor(id: ModuleId, config: EngineConfig): Record<string, unknown> {
  let block = config.modules[id]?.config ?? {};
  if (isClusterMode(config.cluster) && CLUSTER_BACKED.includes(id) && !('adapter' in block))
    block = { ...block, adapter: { name: 'redis' } };
  if (id === 'bridge' && !('url' in block) && process.env['III_URL']) block = { ...block, url: process.env['III_URL'] };
  return resolveModuleConfig(id, block);
}

/** The config id of each module made here, and the block it runs with now. */
const running = new WeakMap<EngineModule, { id: ModuleId; block: string }>();

function made(module: EngineModule, id: ModuleId, block: Record<string, unknown>): EngineModule {
  running.set(module, { id, block: JSON.stringify(block) });
  return module;
}

/**
 * The modules one node runs: the mandatory ones (engine functions, observability,
 * configuration), then every optional module the config enables, each given its block.
 */
export function createModules(engine: Engine, config: EngineConfig): EngineModule[] {
  const observability = blockFor('observability', config);
  const configuration = blockFor('configuration', config);
  const modules: EngineModule[] = [
    new EngineFunctionsModule(engine),
    made(new ObservabilityModule(observability), 'observability', observability),
    made(new ConfigurationModule(configuration), 'configuration', configuration),
  ];
  for (const [id, create] of OPTIONAL) {
    if (!config.modules[id]?.enabled) continue;
    const block = blockFor(id, config);
    modules.push(made(create(block), id, block));
  }
  return modules;
}

/**
 * Applies `config`'s module settings to running modules: a module whose block changed gets it
 * through `reconfigure` and names what it could not apply. Returns the modules that took their
 * change, and one sentence per change that needs a restart (a module without `reconfigure`,
 * one turned on or off, keys it could not apply).
 */
export async function reconfigureModules(
  modules: readonly EngineModule[],
  config: EngineConfig,
): Promise<{ applied: string[]; restart: string[] }> {
  const applied: string[] = [];
  const restart: string[] = [];
  const ids = new Set<ModuleId>();
  for (const module of modules) {
    const state = running.get(module);
    if (!state) continue;
    ids.add(state.id);
    if (!config.modules[state.id]?.enabled && !['observability', 'configuration'].includes(state.id)) {
      restart.push(`${module.name} is no longer listed; restart the engine to stop it`);
      continue;
    }
    const block = blockFor(state.id, config);
    const text = JSON.stringify(block);
    if (text === state.block) continue;
    if (!module.reconfigure) {
      restart.push(`${module.name}: its settings changed; restart the engine to apply them`);
      continue;
    }
    const refused = await module.reconfigure(block);
    state.block = text;
    if (refused.length === 0) applied.push(module.name);
    else
      restart.push(
        `${module.name}: ${refused.join(', ')} changed; restart the engine to apply ${refused.length === 1 ? 'it' : 'them'}`,
      );
  }
  for (const [id] of OPTIONAL) {
    if (config.modules[id]?.enabled && !ids.has(id))
      restart.push(`${config.modules[id]?.entryName ?? id} is newly listed; restart the engine to start it`);
  }
  return { applied, restart };
}

/** The built-in modules, as the engine's caller hands them to it (`createEngine`). */
export const builtinModules: ModuleSet<Engine> = {
  create(engine, config) {
    const modules = createModules(engine, config);
    return { modules, observer: modules.find((m): m is ObservabilityModule => m instanceof ObservabilityModule) };
  },
  reconfigure: reconfigureModules,
};
