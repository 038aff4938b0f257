/**
 * The engine's resolved configuration: what `loadConfig` produces from a YAML file in the
 * iii v0.22 format (or from built-in defaults), after `${VAR:default}` expansion, environment
 * overrides and validation. Every number carries its unit in its name.
 */

/**
 * An `rbac.expose_functions` rule: a `match("pattern")` string, `{metadata: {...}}`, or the
 * iii v0.23 form `{match: "pattern", namespace?: "ns"}` (src/engine/access/function-filter.ts).
 */
export type FunctionFilter = string | { metadata: Record<string, unknown> } | NamespacedFilter;

/** iii v0.23: functions of namespace `namespace` whose id matches `match`. */
export interface NamespacedFilter {
  match: string;
  namespace?: string;
}

export { DEFAULT_NAMESPACE } from '../registry/namespaces';

export interface RbacConfig {
  auth_function_id?: string;
  expose_functions: FunctionFilter[];
  on_function_registration_function_id?: string;
  on_trigger_registration_function_id?: string;
  on_trigger_type_registration_function_id?: string;
}

/** Lowest TLS version a listener accepts (`tls.min_version`). */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/**
 * A listener's certificate chain and private key (PEM), read from their files and checked to
 * match once, at config load (src/transport/tls.ts): a listener with it serves https:// and wss://.
 */
export interface TlsMaterial {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  minVersion: TlsVersion;
}

/** One `iii-worker-manager` listener (the first one is the engine's main port). */
export interface WorkerListenerConfig {
  /** Instance id: `iii-worker-manager`, then `iii-worker-manager#1`, ... */
  instanceId: string;
  host: string;
  port: number;
  handshakeTimeoutMs: number;
  middlewareFunctionId?: string;
  rbac?: RbacConfig;
  /**
   * The shared worker token: `auth_token` in the block, else `III_WORKER_TOKEN`. When set, `/`
   * and `/otel` upgrades without it are refused with 401.
   */
  authToken?: string;
  /**
   * Protected mode (`protected_mode`, default true): bound to a non-loopback address with neither
   * `authToken` nor `rbac.auth_function_id`, the listener accepts loopback peers only (403).
   */
  protectedMode: boolean;
  /** `tls`, else `III_TLS_CERT_FILE`/`III_TLS_KEY_FILE`: the listener serves wss:// only. */
  tls?: TlsMaterial;
}

export interface LimitsConfig {
  /** Largest WebSocket message a worker may send, in bytes (a larger one closes the socket, 1009). */
  maxMessageBytes: number;
  /** Calls one connection may have outstanding as a caller; more are refused with `limit_exceeded`. */
  maxPendingCallsPerWorker: number;
  /** Bytes queued for one socket that has stopped reading before it is closed (1008). */
  maxSendQueueBytes: number;
  /**
   * Largest `invokefunction` or `invocationresult` frame a worker may send, in bytes (the whole
   * frame, envelope included). A larger call is answered `payload_too_large`, a larger result
   * fails its call with it; the socket stays open. Below `maxMessageBytes` to matter.
   */
  maxPayloadBytes: number;
  /** Calls this node may have pending (sent to a worker or another node) at once; more are refused with `limit_exceeded`. */
  maxPendingCallsPerNode: number;
  /** Functions, trigger types and triggers one connection may have registered at once; more are refused `limit_exceeded`. */
  maxRegistrationsPerWorker: number;
  /** Worker and /otel sockets one client address may hold, over every worker listener (0 = unlimited); more get HTTP 429. */
  maxConnectionsPerAddress: number;
}

export interface HttpFunctionsSecurity {
  url_allowlist: string[];
  block_private_ips: boolean;
  require_https: boolean;
}

/**
 * A built-in module's block as written in the file, already checked against the module's schema
 * by `loadConfig` (src/config/schema.ts). Defaults are not filled in, so a module can tell an
 * absent key from a default one; `resolveModuleConfig` (src/config/workers.ts) fills them in.
 */
export interface ModuleConfig {
  enabled: boolean;
  /** The entry name as written (`iii-http` or `http`); `undefined` when on by default. */
  entryName?: string;
  config: Record<string, unknown>;
}

export interface EngineConfig {
  /** Path of the file the config came from, or undefined for built-in defaults. */
  source?: string;
  nodeId: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Engine-side deadline of every synchronous call, in milliseconds. */
  invocationTimeoutMs: number;
  /**
   * iii v0.23 `registration_namespace_grace_ms` (`III_NAMESPACE_GRACE_MS`, default 5000): how long
   * after connecting a worker may still declare its namespace and have its registrations moved there.
   */
  namespaceGraceMs: number;
  /**
   * Drain (stop) grace, in milliseconds: calls in flight get this long to finish before they fail
   * with `engine_shutting_down` and the worker sockets are closed (1012). `engine.drain_grace_ms`,
   * env `III_DRAIN_GRACE_MS`.
   */
  drainGraceMs: number;
  listeners: WorkerListenerConfig[];
  limits: LimitsConfig;
  metrics: { host: string; port: number };
  /**
   * The web console (`engine.console`, env `III_CONSOLE_PORT`, `III_CONSOLE_READ_ONLY`): off while
   * `port` is undefined. It takes the first worker listener's token (docs in src/console/server.ts).
   */
  console: { host: string; port?: number; readOnly: boolean };
  channels: {
    /** A channel that is not fully connected within this many milliseconds is removed. */
    ttlMs: number;
    /** Default and maximum number of messages buffered between writer and reader. */
    defaultBufferMessages: number;
    maxBufferMessages: number;
    /** Payload bytes one channel buffers before its writer is paused (`max_buffer_bytes`). */
    maxBufferBytes: number;
    /** Channels open on this node at once; `create` beyond it fails `limit_exceeded` (`max_open`). */
    maxOpen: number;
  };
  httpFunctions: { enabled: boolean; security: HttpFunctionsSecurity };
  /**
   * Cluster mode is on when `redisUrl` is set (config `cluster.redis_url` or `III_REDIS_URL`), or
   * `redisSentinels` with `redisSentinelName` (Sentinel mode; never both).
   */
  cluster: {
    redisUrl?: string;
    /** `cluster.redis_sentinels` / `III_REDIS_SENTINELS`: the sentinels that know the primary. */
    redisSentinels?: Array<{ host: string; port: number }>;
    /** `cluster.redis_cluster_nodes` / `III_REDIS_CLUSTER_NODES`: some nodes of a Redis Cluster (Cluster mode). */
    redisClusterNodes?: Array<{ host: string; port: number }>;
    /** `cluster.redis_sentinel_name` / `III_REDIS_SENTINEL_NAME`: the primary's name in the sentinels. */
    redisSentinelName?: string;
    /** `III_REDIS_SENTINEL_PASSWORD`: the sentinels' password (the data nodes take `redisPassword`). */
    redisSentinelPassword?: string;
    /** `cluster.redis_tls` / `III_REDIS_TLS`: Sentinel mode only, TLS to the sentinels and the data nodes. */
    redisTls?: boolean;
    /** `III_REDIS_PASSWORD`: replaces the password of `redisUrl` and of every module's own `redis_url`; the data nodes' password in Sentinel mode. */
    redisPassword?: string;
    /** PEM CA file trusted for rediss:// (`cluster.redis_tls_ca_file` or `III_REDIS_TLS_CA_FILE`); default: the system store. */
    redisTlsCaFile?: string;
    keyPrefix: string;
    advertiseHost?: string;
    /** `cluster.bus` / `III_CLUSTER_BUS`: how calls and results travel between nodes (default `redis`). */
    bus?: ClusterBus;
  };
  /**
   * TLS of the module listeners (the worker listeners carry their own): each from its block's
   * `tls`, else `III_TLS_CERT_FILE`/`III_TLS_KEY_FILE`. `ca` (`III_TLS_CA_FILE`, PEM) is what this
   * node trusts when it dials another node's wss:// listener (relayed data channels); without
   * it, Node's default CAs (plus NODE_EXTRA_CA_CERTS). The metrics port is always plain HTTP.
   */
  tls?: { http?: TlsMaterial; stream?: TlsMaterial; ca?: Buffer };
  /**
   * Modules keyed by canonical name: `http`, `stream`, `state`, `pubsub`, `queue`, `cron`,
   * `observability`, `configuration`, `exec`, `bridge`, `telemetry`.
   */
  modules: Record<string, ModuleConfig>;
}

/**
 * `redis`: every message between nodes is a Redis PUBLISH. `direct`: calls and results travel
 * over node-to-node WebSocket links (src/cluster/direct-bus.ts); Redis keeps the registry,
 * membership, locks, queues and the other messages, and carries calls while a link is down.
 */
export const CLUSTER_BUSES = ['redis', 'direct'] as const;
export type ClusterBus = (typeof CLUSTER_BUSES)[number];
