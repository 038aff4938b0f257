import type { EngineConfig } from './config/types';
import { Engine, type EngineOptions } from './engine/engine';
import { builtinModules } from './modules';

/** A node with the built-in modules: the engine and its modules composed, as the CLI runs it. */
export function createEngine(config: EngineConfig, options: Omit<EngineOptions, 'modules'> = {}): Engine {
  return new Engine(config, { ...options, modules: builtinModules });
}
