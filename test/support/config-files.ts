import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load';

/** The ConfigError `fn` throws; any other error is rethrown, and nothing thrown fails. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** Loads `yaml` from a fresh file in `dir`, with `env` as the environment. */
export function loadYamlIn(dir: string, yaml: string, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, yaml);
  return loadConfig({ path: file, env });
}
