/**
 * Loads the engine configuration: a YAML file in the iii v0.22 format (iii-modules.md §1), or
 * built-in defaults when no path is given; then environment overrides; then validation.
 *
 * The file: top-level `workers:` (list of `{name, config?, image?}`), the legacy `modules:` (same
 * shape, merged after `workers`), iii v0.23's `registration_namespace_grace_ms`, and two sections
 * of ours, `engine:` and `cluster:`. Any other top-level key is an error. `${VAR}` /
 * `${VAR:default}` placeholders are expanded (expand.ts). Each `config:` block is checked against
 * its module's convict schema (schema.ts); keys we accept without acting on them yet produce
 * warnings (unimplemented.ts). An entry naming no built-in is an external worker (started by
 * nobody, one warning) or a misspelt built-in (an error): the rule is in external-workers.ts.
 *
 * Without a file every built-in module is on with its defaults (one node, in memory). With a
 * file, a module that is not listed is off, except the mandatory ones (worker manager,
 * observability, configuration, engine functions, telemetry).
 *
 * Environment overrides, applied after the file. An empty value counts as unset; any other value
 * of the wrong form is a ConfigError naming the variable.
 *
 * | Variable          | Overrides                                              | Form               |
 * |-------------------|--------------------------------------------------------|--------------------|
 * | `III_WS_PORT`     | port of the first `iii-worker-manager` listener        | port 0-65535       |
 * | `III_HTTP_PORT`   | `modules.http.config.port`                             | port 0-65535       |
 * | `III_STREAM_PORT` | `modules.stream.config.port`                           | port 0-65535       |
 * | `III_METRICS_PORT`| `metrics.port` (`engine.metrics.port`)                 | port 0-65535       |
 * | `III_CONSOLE_PORT`| `console.port` (`engine.console.port`): turns the web console on | port 0-65535 |
 * | `III_CONSOLE_READ_ONLY` | `console.readOnly` (`engine.console.read_only`)  | `true` or `false`  |
 * | `III_NODE_ID`     | `nodeId`; else `engine.node_id`; else `<hostname>-<6 random hex>` | printable ASCII, no spaces, <= 128 chars |
 * | `LOG_LEVEL`       | `logLevel`; else `engine.log_level`; else iii-observability `level`; else `info` | trace, debug, info, warn, error, fatal, silent |
 * | `III_REDIS_URL`   | `cluster.redisUrl` (`cluster.redis_url`); cluster mode is on when set | redis:// or rediss:// URL |
 * | `III_REDIS_SENTINELS` | `cluster.redisSentinels` (`cluster.redis_sentinels`): Sentinel mode, with `III_REDIS_SENTINEL_NAME`; replaces a `redis_url` of the file | host:port,host:port... |
 * | `III_REDIS_CLUSTER_NODES` | `cluster.redisClusterNodes` (`cluster.redis_cluster_nodes`): Cluster mode, some nodes of a Redis Cluster; replaces a `redis_url` of the file | host:port,host:port... |
 * | `III_REDIS_SENTINEL_NAME` | `cluster.redisSentinelName` (`cluster.redis_sentinel_name`): the primary's name in the sentinels | non-empty string |
 * | `III_REDIS_SENTINEL_PASSWORD` | `cluster.redisSentinelPassword`: the sentinels' password | any string, taken as is |
 * | `III_REDIS_TLS` | `cluster.redisTls` (`cluster.redis_tls`): Sentinel mode, TLS to sentinels and data nodes | true or false |
 * | `III_REDIS_PASSWORD` | `cluster.redisPassword`: replaces the password of every Redis URL (cluster's and modules'); the data nodes' in Sentinel mode | any string, taken as is (not trimmed) |
 * | `III_REDIS_TLS_CA_FILE` | `cluster.redisTlsCaFile` (`cluster.redis_tls_ca_file`): CA trusted for rediss://; default the system store | path of a readable PEM file |
 * | `III_REDIS_KEY_PREFIX` | `cluster.keyPrefix` (`cluster.key_prefix`, default `iii:`) | non-empty string |
 * | `III_ADVERTISE_HOST` | `cluster.advertiseHost` (`cluster.advertise_host`) | host name or address |
 * | `III_CLUSTER_BUS` | `cluster.bus` (default `redis`): `direct` sends calls over node-to-node links | `redis` or `direct` |
 * | `III_DRAIN_GRACE_MS` | `drainGraceMs` (`engine.drain_grace_ms`, default 25000) | integer >= 0 (milliseconds) |
 * | `III_WORKER_TOKEN` | `authToken` of every `iii-worker-manager` listener without its own `auth_token` | non-empty string |
 * | `III_TLS_CERT_FILE` | with `III_TLS_KEY_FILE`: TLS of every worker, http and stream listener without its own `tls` block | PEM file path (both or neither) |
 * | `III_TLS_KEY_FILE` | see `III_TLS_CERT_FILE` | PEM file path, unencrypted |
 * | `III_TLS_CA_FILE` | `tls.ca`: the CA this node trusts when it dials another node's wss:// listener | PEM file path |
 * | `III_NAMESPACE_GRACE_MS` | `registration_namespace_grace_ms` (iii v0.23) | integer >= 0 (milliseconds) |
 *
 * TLS files (a `tls` block's or the variables') are read and checked here, once: a missing,
 * unreadable or mismatched file is a ConfigError naming the setting and the file.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseClusterNodes, parseSentinels, redisOptions } from '../cluster/redis-options';
import { redactUrl } from '../observability/redact-url';
import { ConfigError } from './errors';
import { expandTree, parseYaml } from './expand';
import {
  describeValue,
  intRange,
  isPlainObject,
  nonEmptyString,
  oneOf,
  port as portShape,
  redisUrl,
  ShapeError,
  type SchemaTree,
  type Shape,
} from './formats';
import { classifyUnknown, nearestBuiltin } from './external-workers';
import { clusterSchema, engineSchema, LIMIT_KEYS, LOG_LEVELS, namespaceGraceMs, nodeId as nodeIdShape } from './schema';
import type {
  EngineConfig,
  FunctionFilter,
  HttpFunctionsSecurity,
  LimitsConfig,
  ModuleConfig,
  RbacConfig,
  ClusterBus,
  TlsMaterial,
  TlsVersion,
  WorkerListenerConfig,
} from './types';
import { CLUSTER_BUSES } from './types';
import { unimplementedWarnings } from './unimplemented';
import { validateBlock, type ValidatedBlock } from './validate';
import { DEFAULT_TLS_MIN_VERSION, readCaFile, readTlsMaterial } from './tls-files';
import {
  BUILTIN_WORKER_NAMES,
  BUILTIN_WORKERS,
  findWorker,
  MODULE_IDS,
  resolveModuleConfig,
  workerSpec,
  type WorkerId,
  type WorkerSpec,
} from './workers';

export { ConfigError } from './errors';

export interface LoadConfigOptions {
  /** The YAML file; without one, built-in defaults. */
  path?: string;
  /** Environment for placeholders and overrides (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: EngineConfig;
  /** Accepted-but-ignored settings, one sentence each, for the caller to log. */
  warnings: string[];
  /** Where settings came from besides the file (the configuration store), for the caller to log. */
  notices: string[];
}

/** Modules on when there is no file. */
const DEFAULT_ON: readonly WorkerId[] = [
  'http',
  'stream',
  'state',
  'pubsub',
  'queue',
  'cron',
  'observability',
  'configuration',
  'telemetry',
  'httpFunctions',
];

/** iii v0.23's default `registration_namespace_grace_ms`. */
const DEFAULT_NAMESPACE_GRACE_MS = 5000;

const TOP_LEVEL_KEYS = ['workers', 'modules', 'registration_namespace_grace_ms', 'engine', 'cluster'] as const;
const ENTRY_KEYS = ['name', 'config', 'image'];

/** One listed (or default-on) worker after validation. */
interface Listed {
  spec: WorkerSpec;
  /** The name as written; undefined when on by default. */
  entryName?: string;
  instanceId: string;
  block: ValidatedBlock;
}

interface Sources {
  source?: string;
  listed: Listed[];
  /** Entries for external workers, which nothing starts (external-workers.ts). */
  external: External[];
  /** `registration_namespace_grace_ms` as written, and where (`config.yaml: registration_namespace_grace_ms`). */
  namespaceGrace?: { valueMs: number; at: string };
  engine: ValidatedBlock;
  cluster: ValidatedBlock;
}

export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const warnings: string[] = [];
  const notices: string[] = [];
  const sources = opts.path === undefined ? builtInDefaults() : readFile(opts.path, env, warnings);
  readStoredSettings(sources, env, warnings, notices);
  const config = assemble(sources, warnings);
  applyEnvironment(config, sources, env);
  applyTls(config, sources, env);
  checkRedis(config.cluster, warnings);
  config.namespaceGraceMs =
    (envValue(env, 'III_NAMESPACE_GRACE_MS', namespaceGraceMs) as number | undefined) ??
    sources.namespaceGrace?.valueMs ??
    DEFAULT_NAMESPACE_GRACE_MS;
  warnings.push(...externalWarnings(sources, config));
  return { config, warnings, notices };
}

/**
 * iii 0.21+ moves each worker's block out of config.yaml into the configuration store on its
 * first boot (`<store>/<worker name>.yaml`, store `./config` by default) and reads it from there
 * afterwards. A project that booted under iii keeps its real settings there, so with an `fs`
 * store, a listed worker whose file exists takes its block from that file, validated as a block
 * of config.yaml would be. We read the store; we do not move blocks into it.
 */
function readStoredSettings(sources: Sources, env: NodeJS.ProcessEnv, warnings: string[], notices: string[]): void {
  const store = sources.listed.find((l) => l.spec.id === 'configuration')?.block.resolved['adapter'] as
    { name: string; config?: Record<string, unknown> | null } | undefined;
  if (store !== undefined && store.name !== 'fs') return;
  const directory = store?.config?.['directory'];
  const root = typeof directory === 'string' ? directory : './config';
  for (const listed of sources.listed) {
    if (listed.spec.id === 'configuration' || listed.instanceId.includes('#')) continue;
    const names = [...new Set([listed.entryName ?? listed.spec.names[0], ...listed.spec.names])];
    const file = names.map((name) => path.join(root, `${name}.yaml`)).find((candidate) => fs.existsSync(candidate));
    if (file === undefined) continue;
    const doc = expandTree(parseYaml(fs.readFileSync(file, 'utf8'), file), env, file) ?? {};
    if (!isPlainObject(doc))
      throw new ConfigError(
        `${file}: expected the settings of ${listed.instanceId} as a mapping, got ${describeValue(doc)}`,
      );
    listed.block = blockOf(listed.spec, doc, file, listed.instanceId);
    warnings.push(...unimplementedWarnings(listed.spec.id, listed.instanceId, listed.block.asWritten));
    notices.push(
      `${listed.instanceId}: settings read from ${path.resolve(file)} (the configuration store, where iii 0.21+ keeps them after its first boot), not from ${sources.source ?? 'the built-in defaults'}`,
    );
  }
}

// --- sources ---------------------------------------------------------------------------------

const DEFAULTS_LABEL = 'built-in defaults';

function builtInDefaults(): Sources {
  const listed: Listed[] = [];
  for (const id of [...DEFAULT_ON, 'workerManager' as const]) {
    const spec = workerSpec(id);
    listed.push({ spec, instanceId: spec.names[0], block: blockOf(spec, {}, DEFAULTS_LABEL, spec.names[0]) });
  }
  return {
    listed,
    external: [],
    engine: validateBlock(engineSchema, {}, { file: DEFAULTS_LABEL, where: 'engine' }),
    cluster: validateBlock(clusterSchema, {}, { file: DEFAULTS_LABEL, where: 'cluster' }),
  };
}

function readFile(file: string, env: NodeJS.ProcessEnv, warnings: string[]): Sources {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`config file not found: ${file}`);
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const doc = expandTree(parseYaml(text, file), env, file) ?? {};
  if (!isPlainObject(doc)) {
    throw new ConfigError(`${file}: expected a mapping at the top level (keys: ${TOP_LEVEL_KEYS.join(', ')})`);
  }
  for (const key of Object.keys(doc)) {
    if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(
        `${file}: unknown top-level key "${key}" (expected workers, modules (legacy name of workers), registration_namespace_grace_ms, engine or cluster)`,
      );
    }
  }

  const all = [...listEntries(doc, 'workers', file), ...listEntries(doc, 'modules', file)];
  const entries = all.filter((e): e is Entry => 'spec' in e);
  const external = all.filter((e): e is External => !('spec' in e));
  rejectDuplicates(entries, file);

  const listed: Listed[] = [];
  const instances = new Map<string, number>();
  for (const entry of entries) {
    const n = instances.get(entry.name) ?? 0;
    instances.set(entry.name, n + 1);
    const instanceId = n === 0 ? entry.name : `${entry.name}#${n}`;
    for (const key of Object.keys(entry.raw)) {
      if (!ENTRY_KEYS.includes(key)) {
        warnings.push(
          `${file}: ${entry.label}: key "${key}" of the worker entry is ignored (entries take name, config, image)`,
        );
      }
    }
    const block = blockOf(entry.spec, entry.config, file, `${entry.label}.config`);
    warnings.push(...unimplementedWarnings(entry.spec.id, instanceId, block.asWritten));
    listed.push({ spec: entry.spec, entryName: entry.name, instanceId, block });
  }

  const engine = sectionOf(doc, 'engine', engineSchema, file);
  const cluster = sectionOf(doc, 'cluster', clusterSchema, file);
  const sources: Sources = { source: path.resolve(file), listed, external, engine, cluster };
  const grace = topLevelValue(doc, 'registration_namespace_grace_ms', namespaceGraceMs, file);
  if (grace !== undefined)
    sources.namespaceGrace = { valueMs: grace as number, at: `${file}: registration_namespace_grace_ms` };
  return sources;
}

/** A scalar top-level key, converted as a schema leaf would be (`"5000"` from `${VAR}` is 5000). */
function topLevelValue(doc: Record<string, unknown>, key: string, shape: Shape, file: string): unknown {
  const raw = doc[key];
  if (raw === undefined || raw === null) return undefined;
  const value = shape.coercion === 'int' && typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  try {
    shape.assert(value, '');
  } catch (err) {
    if (err instanceof ShapeError) throw new ConfigError(`${file}: ${key}: ${err.message}`);
    throw err;
  }
  return value;
}

/** An entry for a worker iii-cluster does not contain. */
interface External {
  name: string;
  /** `workers[3]` */
  at: string;
  /** `image ghcr.io/org/w:1.0`, `registry worker`. */
  source: string;
  /** Where the file was read. */
  file: string;
}

interface Entry {
  spec: WorkerSpec;
  name: string;
  /** `workers[2] (iii-http)` */
  label: string;
  config: Record<string, unknown>;
  raw: Record<string, unknown>;
}

function listEntries(doc: Record<string, unknown>, key: 'workers' | 'modules', file: string): Array<Entry | External> {
  if (!(key in doc)) return [];
  const list = doc[key];
  if (!Array.isArray(list)) {
    throw new ConfigError(
      `${file}: ${key}: expected a list (write \`${key}: []\` for an empty one), got ${describeValue(list)}`,
    );
  }
  return list.map((raw, i) => {
    const at = `${key}[${i}]`;
    if (!isPlainObject(raw))
      throw new ConfigError(`${file}: ${at}: expected a mapping {name, config?}, got ${describeValue(raw)}`);
    const name = raw['name'];
    if (typeof name !== 'string' || name === '') {
      throw new ConfigError(`${file}: ${at}.name: expected a worker name, got ${describeValue(name)}`);
    }
    const label = `${at} (${name})`;
    const image = raw['image'];
    if (image !== undefined && image !== null && (typeof image !== 'string' || image.trim() === '')) {
      throw new ConfigError(
        `${file}: ${label}.image: expected an image reference (a non-empty string), got ${describeValue(image)}`,
      );
    }
    const spec = findWorker(name);
    if (!spec) {
      const unknown = classifyUnknown(name, typeof image === 'string' ? image : undefined);
      if (unknown.kind === 'external') return { name, at, source: unknown.source, file };
      const guess = unknown.suggestion === undefined ? '' : `: did you mean "${unknown.suggestion}"?`;
      throw new ConfigError(
        `${file}: ${at}: unknown worker ${describeValue(name)}${guess} (iii- names are iii's own workers; the built-ins are ${BUILTIN_WORKER_NAMES.join(', ')}; an external worker takes an image: or a registry name such as org/name)`,
      );
    }
    if (image !== undefined && image !== null) {
      throw new ConfigError(`${file}: ${label}.image: "${name}" is a built-in worker and cannot take an image`);
    }
    const config = raw['config'] ?? {};
    if (!isPlainObject(config))
      throw new ConfigError(`${file}: ${label}.config: expected a mapping, got ${describeValue(config)}`);
    return { spec, name, label, config, raw };
  });
}

/** Both names of a renamed pair, or one non-repeatable worker twice, cannot both be meant. */
function rejectDuplicates(entries: Entry[], file: string): void {
  const names = new Set(entries.map((e) => e.name));
  const pairs = BUILTIN_WORKERS.filter((w) => w.names.length > 1 && w.names.every((n) => names.has(n)));
  if (pairs.length > 0) {
    const listing = pairs.map((w) => w.names.map((n) => `"${n}"`).join(' and ')).join('; ');
    throw new ConfigError(
      `${file}: Duplicate worker configurations: ${listing} (each pair names the same worker; keep one)`,
    );
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.name) && !entry.spec.repeatable) {
      throw new ConfigError(
        `${file}: ${entry.label}: "${entry.name}" is listed more than once (only iii-worker-manager may repeat)`,
      );
    }
    seen.add(entry.name);
  }
}

function blockOf(spec: WorkerSpec, config: Record<string, unknown>, file: string, where: string): ValidatedBlock {
  if (spec.schema === null) return { asWritten: config, resolved: config };
  return validateBlock(spec.schema, config, { file, where });
}

function sectionOf(
  doc: Record<string, unknown>,
  key: 'engine' | 'cluster',
  schema: SchemaTree,
  file: string,
): ValidatedBlock {
  const value = doc[key] ?? {};
  if (!isPlainObject(value)) throw new ConfigError(`${file}: ${key}: expected a mapping, got ${describeValue(value)}`);
  return validateBlock(schema, value, { file, where: key });
}

// --- assembly --------------------------------------------------------------------------------

function assemble(sources: Sources, warnings: string[]): EngineConfig {
  const label = sources.source ?? DEFAULTS_LABEL;
  const byId = (id: WorkerId): Listed[] => sources.listed.filter((l) => l.spec.id === id);

  const modules: Record<string, ModuleConfig> = {};
  for (const id of MODULE_IDS) {
    const entry = byId(id)[0];
    const spec = workerSpec(id);
    if (entry) {
      const module: ModuleConfig = { enabled: true, config: entry.block.asWritten };
      if (entry.entryName !== undefined) module.entryName = entry.entryName;
      modules[id] = module;
    } else {
      modules[id] = { enabled: spec.mandatory, config: {} };
    }
  }

  const httpFunctionsEntry = byId('httpFunctions')[0];
  const httpFunctionsResolved = httpFunctionsEntry?.block.resolved ?? resolveModuleConfig('httpFunctions');
  const security = httpFunctionsResolved['security'] as HttpFunctionsSecurity;
  const httpFunctions = {
    enabled: httpFunctionsEntry !== undefined,
    security: {
      url_allowlist: security.url_allowlist.length > 0 ? security.url_allowlist : ['*'],
      block_private_ips: security.block_private_ips,
      require_https: security.require_https,
    },
  };

  let managers = byId('workerManager');
  if (managers.length === 0) {
    const spec = workerSpec('workerManager');
    managers = [{ spec, instanceId: spec.names[0], block: blockOf(spec, {}, label, 'iii-worker-manager') }];
  }
  const listeners = managers.map(toListener);
  const first = managers[0].block.resolved;
  const limits: LimitsConfig = {
    maxMessageBytes: first['max_message_bytes'] as number,
    maxPendingCallsPerWorker: first['max_pending_calls_per_worker'] as number,
    maxSendQueueBytes: first['max_send_queue_bytes'] as number,
    maxPayloadBytes: first['max_payload_bytes'] as number,
    maxPendingCallsPerNode: first['max_pending_calls_per_node'] as number,
    maxRegistrationsPerWorker: first['max_registrations_per_worker'] as number,
    maxConnectionsPerAddress: first['max_connections_per_address'] as number,
  };
  for (const other of managers.slice(1)) {
    for (const key of LIMIT_KEYS) {
      if (key in other.block.asWritten) {
        warnings.push(
          `${other.instanceId}: key "${key}" is ignored; limits are read from the first iii-worker-manager entry`,
        );
      }
    }
  }

  const engine = sources.engine.resolved;
  const metrics = engine['metrics'] as { host: string; port: number };
  const consoleBlock = engine['console'] as { host: string; port: number | null; read_only: boolean };
  const channels = engine['channels'] as {
    ttl_ms: number;
    default_buffer_messages: number;
    max_buffer_messages: number;
    max_buffer_bytes: number;
    max_open: number;
  };
  if (channels.default_buffer_messages > channels.max_buffer_messages) {
    throw new ConfigError(
      `${label}: engine.channels.default_buffer_messages: expected at most max_buffer_messages (${channels.max_buffer_messages}), got ${channels.default_buffer_messages}`,
    );
  }
  const redisUrlValue = sources.cluster.resolved['redis_url'];
  const redisCaValue = sources.cluster.resolved['redis_tls_ca_file'];
  const sentinelsValue = sources.cluster.resolved['redis_sentinels'];
  const sentinelNameValue = sources.cluster.resolved['redis_sentinel_name'];
  const where = `${sources.source ?? 'built-in defaults'}: cluster`;
  const clusterNodesValue = sources.cluster.resolved['redis_cluster_nodes'];
  const clusterNodes =
    clusterNodesValue === null || clusterNodesValue === undefined || clusterNodesValue === ''
      ? undefined
      : hostPorts(parseClusterNodes, clusterNodesValue as string | string[], `${where}.redis_cluster_nodes`);
  const sentinels =
    sentinelsValue === null || sentinelsValue === undefined || sentinelsValue === ''
      ? undefined
      : sentinelAddresses(sentinelsValue as string | string[], `${where}.redis_sentinels`);

  const config: EngineConfig = {
    nodeId: '',
    logLevel: 'info',
    invocationTimeoutMs: engine['invocation_timeout_ms'] as number,
    namespaceGraceMs: DEFAULT_NAMESPACE_GRACE_MS,
    drainGraceMs: engine['drain_grace_ms'] as number,
    listeners,
    limits,
    metrics: { host: metrics.host, port: metrics.port },
    console: {
      host: consoleBlock.host,
      readOnly: consoleBlock.read_only,
      ...(consoleBlock.port === null ? {} : { port: consoleBlock.port }),
    },
    channels: {
      ttlMs: channels.ttl_ms,
      defaultBufferMessages: channels.default_buffer_messages,
      maxBufferMessages: channels.max_buffer_messages,
      maxBufferBytes: channels.max_buffer_bytes,
      maxOpen: channels.max_open,
    },
    httpFunctions,
    cluster: {
      keyPrefix: sources.cluster.resolved['key_prefix'] as string,
      bus: sources.cluster.resolved['bus'] as ClusterBus,
      ...(typeof sources.cluster.resolved['advertise_host'] === 'string'
        ? { advertiseHost: sources.cluster.resolved['advertise_host'] }
        : {}),
      ...(typeof redisUrlValue === 'string' && redisUrlValue !== '' ? { redisUrl: redisUrlValue } : {}),
      ...(typeof redisCaValue === 'string' ? { redisTlsCaFile: redisCaValue } : {}),
      ...(sentinels === undefined ? {} : { redisSentinels: sentinels }),
      ...(clusterNodes === undefined ? {} : { redisClusterNodes: clusterNodes }),
      ...(typeof sentinelNameValue === 'string' && sentinelNameValue !== ''
        ? { redisSentinelName: sentinelNameValue }
        : {}),
      ...(sources.cluster.resolved['redis_tls'] === true ? { redisTls: true } : {}),
    },
    modules,
  };
  if (sources.source !== undefined) config.source = sources.source;
  return config;
}

function toListener(entry: Listed): WorkerListenerConfig {
  const r = entry.block.resolved;
  const listener: WorkerListenerConfig = {
    instanceId: entry.instanceId,
    host: r['host'] as string,
    port: r['port'] as number,
    handshakeTimeoutMs: r['handshake_timeout_ms'] as number,
    protectedMode: r['protected_mode'] as boolean,
  };
  if (typeof r['auth_token'] === 'string') listener.authToken = r['auth_token'];
  if (typeof r['middleware_function_id'] === 'string') listener.middlewareFunctionId = r['middleware_function_id'];
  if ('rbac' in entry.block.asWritten) {
    const rbac = r['rbac'] as Record<string, unknown>;
    const out: RbacConfig = { expose_functions: rbac['expose_functions'] as FunctionFilter[] };
    const optional = [
      'auth_function_id',
      'on_function_registration_function_id',
      'on_trigger_registration_function_id',
      'on_trigger_type_registration_function_id',
    ] as const;
    for (const key of optional) {
      const value = rbac[key];
      if (typeof value === 'string') out[key] = value;
    }
    listener.rbac = out;
  }
  return listener;
}

// --- warnings about what is accepted but not built ------------------------------------------

/** One line per external worker entry, with the URL to point the worker at. */
function externalWarnings(sources: Sources, config: EngineConfig): string[] {
  const listener = config.listeners[0];
  const wildcard = ['0.0.0.0', '::', '[::]', ''].includes(listener.host);
  const url = `${listener.tls ? 'wss' : 'ws'}://${wildcard ? 'localhost' : listener.host}:${listener.port}`;
  return sources.external.map((e) => {
    // A bare registry name one edit from a built-in (`htttp`, `crons`) may be a typo: say so.
    const near = e.source === 'registry worker' && !e.name.includes('/') ? nearestBuiltin(e.name, 1) : undefined;
    const hint = near === undefined ? '' : ` (if you meant the built-in "${near}", correct the name)`;
    return `${e.file}: ${e.at}: worker ${describeValue(e.name)} (${e.source}): external workers are not started by iii-cluster; run it yourself and point it at this engine (${url})${hint}`;
  });
}

// --- environment -----------------------------------------------------------------------------

/** The override table at the top of this file. */
function applyEnvironment(config: EngineConfig, sources: Sources, env: NodeJS.ProcessEnv): void {
  const wsPort = envValue(env, 'III_WS_PORT', portShape);
  if (wsPort !== undefined) config.listeners[0].port = wsPort as number;

  const httpPort = envValue(env, 'III_HTTP_PORT', portShape);
  if (httpPort !== undefined) config.modules['http'].config['port'] = httpPort;

  const streamPort = envValue(env, 'III_STREAM_PORT', portShape);
  if (streamPort !== undefined) config.modules['stream'].config['port'] = streamPort;

  const metricsPort = envValue(env, 'III_METRICS_PORT', portShape);
  if (metricsPort !== undefined) config.metrics.port = metricsPort as number;

  const consolePort = envValue(env, 'III_CONSOLE_PORT', portShape);
  if (consolePort !== undefined) config.console.port = consolePort as number;
  const consoleReadOnly = envValue(env, 'III_CONSOLE_READ_ONLY', oneOf(['true', 'false']), (v) => v.toLowerCase());
  if (consoleReadOnly !== undefined) config.console.readOnly = consoleReadOnly === 'true';

  const redis = envValue(env, 'III_REDIS_URL', redisUrl, undefined, redactUrl);
  const sentinels = env['III_REDIS_SENTINELS']?.trim()
    ? sentinelAddresses(env['III_REDIS_SENTINELS'], 'environment variable III_REDIS_SENTINELS')
    : undefined;
  if (redis !== undefined && sentinels !== undefined) {
    throw new ConfigError(
      'environment variables III_REDIS_URL and III_REDIS_SENTINELS are both set: give one Redis, a URL or sentinels (with III_REDIS_SENTINEL_NAME)',
    );
  }
  const clusterNodes = env['III_REDIS_CLUSTER_NODES']?.trim()
    ? hostPorts(parseClusterNodes, env['III_REDIS_CLUSTER_NODES'], 'environment variable III_REDIS_CLUSTER_NODES')
    : undefined;
  if (clusterNodes !== undefined && (redis !== undefined || sentinels !== undefined)) {
    throw new ConfigError(
      `environment variables III_REDIS_CLUSTER_NODES and ${redis !== undefined ? 'III_REDIS_URL' : 'III_REDIS_SENTINELS'} are both set: give one Redis, a URL, sentinels or the nodes of a Redis Cluster`,
    );
  }
  // The environment overrides the file: a URL given there replaces the file's sentinels, and
  // sentinels replace the file's URL (config/cluster.yaml writes a default redis_url).
  if (redis !== undefined) {
    config.cluster.redisUrl = redis as string;
    delete config.cluster.redisSentinels;
    delete config.cluster.redisSentinelName;
    delete config.cluster.redisClusterNodes;
  }
  if (sentinels !== undefined) {
    config.cluster.redisSentinels = sentinels;
    delete config.cluster.redisUrl;
    delete config.cluster.redisClusterNodes;
  }
  if (clusterNodes !== undefined) {
    config.cluster.redisClusterNodes = clusterNodes;
    delete config.cluster.redisUrl;
    delete config.cluster.redisSentinels;
    delete config.cluster.redisSentinelName;
  }
  const sentinelName = envValue(env, 'III_REDIS_SENTINEL_NAME', nonEmptyString);
  if (sentinelName !== undefined) config.cluster.redisSentinelName = sentinelName as string;
  const sentinelPassword = env['III_REDIS_SENTINEL_PASSWORD'];
  if (sentinelPassword !== undefined && sentinelPassword !== '')
    config.cluster.redisSentinelPassword = sentinelPassword;
  const redisTls = envValue(env, 'III_REDIS_TLS', oneOf(['true', 'false']), (v) => v.toLowerCase());
  if (redisTls !== undefined) config.cluster.redisTls = redisTls === 'true';
  // A secret is taken exactly as given: Redis compares it byte for byte.
  const redisPassword = env['III_REDIS_PASSWORD'];
  if (redisPassword !== undefined && redisPassword !== '') config.cluster.redisPassword = redisPassword;
  const redisCa = envValue(env, 'III_REDIS_TLS_CA_FILE', nonEmptyString);
  if (redisCa !== undefined) config.cluster.redisTlsCaFile = redisCa as string;
  const keyPrefix = envValue(env, 'III_REDIS_KEY_PREFIX', nonEmptyString);
  if (keyPrefix !== undefined) config.cluster.keyPrefix = keyPrefix as string;
  const advertiseHost = envValue(env, 'III_ADVERTISE_HOST', nonEmptyString);
  if (advertiseHost !== undefined) config.cluster.advertiseHost = advertiseHost as string;
  const bus = envValue(env, 'III_CLUSTER_BUS', oneOf(CLUSTER_BUSES));
  if (bus !== undefined) config.cluster.bus = bus as ClusterBus;

  const workerToken = envValue(env, 'III_WORKER_TOKEN', nonEmptyString);
  if (workerToken !== undefined) for (const listener of config.listeners) listener.authToken ??= workerToken as string;

  const drainGrace = envValue(env, 'III_DRAIN_GRACE_MS', drainGraceShape);
  if (drainGrace !== undefined) config.drainGraceMs = drainGrace as number;

  const nodeId = envValue(env, 'III_NODE_ID', nodeIdShape) ?? sources.engine.resolved['node_id'];
  config.nodeId = typeof nodeId === 'string' ? nodeId : `${os.hostname()}-${randomBytes(3).toString('hex')}`;

  const level =
    envValue(env, 'LOG_LEVEL', logLevelShape, (v) => v.toLowerCase()) ??
    sources.engine.resolved['log_level'] ??
    sources.listed.find((l) => l.spec.id === 'observability')?.block.asWritten['level'] ??
    'info';
  config.logLevel = level as EngineConfig['logLevel'];
}

/**
 * TLS of each listener: its own `tls` block, else the `III_TLS_CERT_FILE`/`III_TLS_KEY_FILE` pair
 * (both or neither). Each pair of files is read once, however many listeners share it.
 */
function applyTls(config: EngineConfig, sources: Sources, env: NodeJS.ProcessEnv): void {
  const label = sources.source ?? DEFAULTS_LABEL;
  const certEnv = envValue(env, 'III_TLS_CERT_FILE', nonEmptyString) as string | undefined;
  const keyEnv = envValue(env, 'III_TLS_KEY_FILE', nonEmptyString) as string | undefined;
  if ((certEnv === undefined) !== (keyEnv === undefined)) {
    const [set, unset] =
      certEnv === undefined ? ['III_TLS_KEY_FILE', 'III_TLS_CERT_FILE'] : ['III_TLS_CERT_FILE', 'III_TLS_KEY_FILE'];
    throw new ConfigError(
      `environment variable ${set} is set but ${unset} is not: TLS needs both the certificate and the key file`,
    );
  }
  const read = new Map<string, TlsMaterial>();
  const material = (block: unknown, at: string): TlsMaterial | undefined => {
    const written = block as { cert_file: string; key_file: string; min_version?: TlsVersion } | null | undefined;
    const files = written
      ? {
          certFile: written.cert_file,
          keyFile: written.key_file,
          minVersion: written.min_version ?? DEFAULT_TLS_MIN_VERSION,
        }
      : certEnv !== undefined && keyEnv !== undefined
        ? { certFile: certEnv, keyFile: keyEnv, minVersion: DEFAULT_TLS_MIN_VERSION }
        : undefined;
    if (files === undefined) return undefined;
    const id = `${files.certFile}\0${files.keyFile}\0${files.minVersion}`;
    let loaded = read.get(id);
    if (loaded === undefined) {
      const from = written
        ? { cert: `${label}: ${at}.tls.cert_file`, key: `${label}: ${at}.tls.key_file` }
        : {
            cert: `environment variable III_TLS_CERT_FILE (${at})`,
            key: `environment variable III_TLS_KEY_FILE (${at})`,
          };
      loaded = readTlsMaterial(files, from);
      read.set(id, loaded);
    }
    return loaded;
  };

  for (const listener of config.listeners) {
    const entry = sources.listed.find((l) => l.spec.id === 'workerManager' && l.instanceId === listener.instanceId);
    const tls = material(entry?.block.asWritten['tls'], listener.instanceId);
    if (tls) listener.tls = tls;
  }
  const tls: NonNullable<EngineConfig['tls']> = {};
  for (const id of ['http', 'stream'] as const) {
    const module = config.modules[id];
    if (!module?.enabled) continue;
    const loaded = material(module.config['tls'], module.entryName ?? workerSpec(id).names[0]);
    if (loaded) tls[id] = loaded;
  }
  const caFile = envValue(env, 'III_TLS_CA_FILE', nonEmptyString) as string | undefined;
  if (caFile !== undefined) tls.ca = readCaFile(caFile, 'environment variable III_TLS_CA_FILE');
  if (Object.keys(tls).length > 0) config.tls = tls;
}

/** `III_DRAIN_GRACE_MS`: 0 fails every call still in flight at once. */
const drainGraceShape = intRange(0, undefined, 'milliseconds');

/**
 * The cluster's Redis URL must be usable (a host, a numeric db) and the CA file readable now,
 * not at the first connection; a CA file set for a plain redis:// URL is a warning (it is used
 * for rediss:// only). Messages never show the password.
 */
function checkRedis(cluster: EngineConfig['cluster'], warnings: string[]): void {
  checkSentinelMode(cluster);
  if (cluster.redisUrl !== undefined) {
    try {
      redisOptions({ url: cluster.redisUrl });
    } catch (err) {
      throw new ConfigError(`cluster.redis_url / III_REDIS_URL: ${(err as Error).message}`);
    }
  }
  const file = cluster.redisTlsCaFile;
  if (file === undefined) return;
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw new ConfigError(
      `cluster.redis_tls_ca_file / III_REDIS_TLS_CA_FILE: cannot read ${file}: ${(err as Error).message}`,
    );
  }
  if (cluster.redisSentinels !== undefined && cluster.redisTls !== true) {
    warnings.push(
      `cluster.redis_tls_ca_file (${file}) is used with TLS only; Sentinel mode without cluster.redis_tls / III_REDIS_TLS is plain TCP`,
    );
  }
  if (cluster.redisUrl?.startsWith('redis://')) {
    warnings.push(
      `cluster.redis_tls_ca_file (${file}) is used for rediss:// URLs only; cluster.redis_url is redis:// (no TLS)`,
    );
  }
}

/**
 * Sentinel mode needs both the sentinels and the primary's name, and is never combined with a
 * URL; cluster.redis_tls belongs to it (with a URL, rediss:// says TLS).
 */
function checkSentinelMode(cluster: EngineConfig['cluster']): void {
  const hasSentinels = cluster.redisSentinels !== undefined;
  const hasName = cluster.redisSentinelName !== undefined;
  if (hasSentinels && !hasName) {
    throw new ConfigError(
      "cluster.redis_sentinels / III_REDIS_SENTINELS is set without the primary's name: set cluster.redis_sentinel_name / III_REDIS_SENTINEL_NAME too (the name in `sentinel monitor <name> ...`)",
    );
  }
  if (hasName && !hasSentinels) {
    throw new ConfigError(
      'cluster.redis_sentinel_name / III_REDIS_SENTINEL_NAME is set without sentinels: set cluster.redis_sentinels / III_REDIS_SENTINELS too (host:port,host:port...)',
    );
  }
  if (cluster.redisClusterNodes !== undefined && (hasSentinels || cluster.redisUrl !== undefined)) {
    throw new ConfigError(
      `cluster.redis_cluster_nodes and cluster.${hasSentinels ? 'redis_sentinels' : 'redis_url'} are both set: give one Redis, a URL, sentinels or the nodes of a Redis Cluster`,
    );
  }
  if (hasSentinels && cluster.redisUrl !== undefined) {
    throw new ConfigError(
      'cluster.redis_url and cluster.redis_sentinels are both set: give one Redis, a URL or sentinels with a primary name',
    );
  }
  if (cluster.redisTls === true && !hasSentinels && cluster.redisClusterNodes === undefined) {
    throw new ConfigError(
      'cluster.redis_tls / III_REDIS_TLS is for Sentinel and Cluster mode; with a URL, write rediss:// to turn TLS on',
    );
  }
}

/** A sentinel list (III_REDIS_SENTINELS or cluster.redis_sentinels) parsed, or a ConfigError naming where it was set. */
function sentinelAddresses(value: string | string[], where: string): Array<{ host: string; port: number }> {
  return hostPorts(parseSentinels, value, where);
}

/** A host:port list parsed by `parse`, or a ConfigError naming where it was set. */
function hostPorts(
  parse: (value: string | string[]) => Array<{ host: string; port: number }>,
  value: string | string[],
  where: string,
): Array<{ host: string; port: number }> {
  try {
    return parse(value);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
}

const logLevelShape: Shape = {
  expected: `one of ${LOG_LEVELS.join(', ')}`,
  assert(value, at) {
    if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
      throw new ShapeError(at, `one of ${LOG_LEVELS.join(', ')}`, value);
    }
  },
};

/**
 * Reads one override: unset or empty gives undefined; a port is converted from its decimal form.
 * A value of the wrong form is a ConfigError naming the variable, showing the value as `shown`
 * makes it (a URL without its password).
 */
function envValue(
  env: NodeJS.ProcessEnv,
  name: string,
  shape: Shape,
  normalize: (raw: string) => string = (v) => v,
  shown: (raw: string) => string = (v) => v,
): unknown {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const text = normalize(raw.trim());
  const value = shape.coercion === 'int' && /^\d+$/.test(text) ? Number(text) : text;
  try {
    shape.assert(value, '');
  } catch (err) {
    if (err instanceof ShapeError) {
      throw new ConfigError(
        `environment variable ${name}: expected ${err.expected}, got ${JSON.stringify(shown(raw))}`,
      );
    }
    throw err;
  }
  return value;
}
