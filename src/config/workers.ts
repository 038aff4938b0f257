import type { SchemaTree } from './formats';
import { withDefaults } from './validate';
import {
  bridgeSchema,
  configurationSchema,
  cronSchema,
  engineFunctionsSchema,
  execSchema,
  httpFunctionsSchema,
  httpSchema,
  observabilitySchema,
  pubsubSchema,
  queueSchema,
  stateSchema,
  streamSchema,
  workerManagerSchema,
} from './schema';

/**
 * The built-in worker names a config file may list (iii v0.22.1, iii-modules.md §1.2), each
 * resolved to one of our parts. The five modules renamed in 0.22 (`iii-http` -> `http`, ...) take
 * both names; listing both names of one pair is refused, as the original does. Any other name
 * is an external worker, which we do not start, or a misspelt built-in (external-workers.ts).
 */

/** Keys of `EngineConfig.modules`. */
export const MODULE_IDS = [
  'http',
  'stream',
  'state',
  'pubsub',
  'queue',
  'cron',
  'observability',
  'configuration',
  'exec',
  'bridge',
  'telemetry',
] as const;

export type ModuleId = (typeof MODULE_IDS)[number];

/** A module id, or one of the parts with their own field in EngineConfig. */
export type WorkerId = ModuleId | 'httpFunctions' | 'engineFunctions' | 'workerManager';

export interface WorkerSpec {
  id: WorkerId;
  /** Accepted names; the first is the iii name used in messages. */
  names: readonly string[];
  /** Always on, whether listed or not. */
  mandatory: boolean;
  /** May be listed several times (instances `name`, `name#1`, ...). */
  repeatable: boolean;
  /** Convict schema of the `config:` block; `null` = accepted without checking (see below). */
  schema: SchemaTree | null;
}

export const BUILTIN_WORKERS: readonly WorkerSpec[] = [
  {
    id: 'workerManager',
    names: ['iii-worker-manager'],
    mandatory: true,
    repeatable: true,
    schema: workerManagerSchema,
  },
  { id: 'configuration', names: ['configuration'], mandatory: true, repeatable: false, schema: configurationSchema },
  {
    id: 'engineFunctions',
    names: ['iii-engine-functions'],
    mandatory: true,
    repeatable: false,
    schema: engineFunctionsSchema,
  },
  {
    id: 'observability',
    names: ['iii-observability'],
    mandatory: true,
    repeatable: false,
    schema: observabilitySchema,
  },
  // The original documents no keys for telemetry; we send none, so its block is only warned about.
  { id: 'telemetry', names: ['iii-telemetry'], mandatory: true, repeatable: false, schema: null },
  { id: 'http', names: ['iii-http', 'http'], mandatory: false, repeatable: false, schema: httpSchema },
  { id: 'stream', names: ['iii-stream'], mandatory: false, repeatable: false, schema: streamSchema },
  { id: 'state', names: ['iii-state', 'state'], mandatory: false, repeatable: false, schema: stateSchema },
  { id: 'cron', names: ['iii-cron', 'cron'], mandatory: false, repeatable: false, schema: cronSchema },
  { id: 'pubsub', names: ['iii-pubsub', 'pubsub'], mandatory: false, repeatable: false, schema: pubsubSchema },
  { id: 'queue', names: ['iii-queue', 'queue'], mandatory: false, repeatable: false, schema: queueSchema },
  {
    id: 'httpFunctions',
    names: ['iii-http-functions'],
    mandatory: false,
    repeatable: false,
    schema: httpFunctionsSchema,
  },
  { id: 'exec', names: ['iii-exec'], mandatory: false, repeatable: false, schema: execSchema },
  { id: 'bridge', names: ['iii-bridge'], mandatory: false, repeatable: false, schema: bridgeSchema },
];

export function findWorker(name: string): WorkerSpec | undefined {
  return BUILTIN_WORKERS.find((w) => w.names.includes(name));
}

export function workerSpec(id: WorkerId): WorkerSpec {
  const spec = BUILTIN_WORKERS.find((w) => w.id === id);
  if (!spec) throw new Error(`no built-in worker ${id}`);
  return spec;
}

/** Every accepted name, for "unknown worker" messages. */
export const BUILTIN_WORKER_NAMES: readonly string[] = BUILTIN_WORKERS.flatMap((w) => w.names);

/**
 * A module's block with every default of its schema filled in, for modules that would rather
 * not repeat the defaults. Note that sections the user left out (`cors`, `rbac`) come back
 * filled in too, so check `ModuleConfig.config` when absence matters.
 */
export function resolveModuleConfig(id: WorkerId, config: Record<string, unknown> = {}): Record<string, unknown> {
  const schema = workerSpec(id).schema;
  return schema === null ? { ...config } : withDefaults(schema, config);
}
