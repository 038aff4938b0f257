import {
  anyMapping,
  anyOf,
  bool,
  functionId,
  host,
  integer,
  intRange,
  isPlainObject,
  leaf,
  listOf,
  mapOf,
  nonEmptyString,
  numberRange,
  oneOf,
  port,
  record,
  redisUrl,
  ShapeError,
  urlWithScheme,
  type Leaf,
  type SchemaTree,
  type Shape,
} from './formats';
import { MAX_CLIENT_FRAME_BYTES, MAX_CLIENT_SEND_BUFFER_BYTES, MAX_SUBSCRIPTIONS_PER_CLIENT } from './stream-limits';
import { TLS_VERSIONS } from './tls-files';
import { CLUSTER_BUSES } from './types';
import { ENGINE_VERSION } from './version';

/**
 * One convict schema per config block: every key the iii v0.22 engine defines for the module
 * (docs/reference: iii-modules.md §3-§12), with its default, plus our own keys where noted.
 * Defaults here are the original's; a module receives the block *as written* (see
 * `ModuleConfig.config`) and can fill these defaults in with `resolveModuleConfig`.
 */

const MiB = 1024 * 1024;

// --- shared pieces ---------------------------------------------------------------------------

const ms = (min = 1): Shape => intRange(min, undefined, 'milliseconds');

/** Adapter options are free-form in the original's boot parser; we check the keys we know. */
const adapterOptions: Shape = record(
  {
    redis_url: redisUrl,
    bridge_url: urlWithScheme(['ws', 'wss']),
    auth_token: nonEmptyString,
    // bridge (ours, iii-stream and iii-queue): how long a call waits for the other engine
    timeout_ms: ms(),
    directory: nonEmptyString,
    store_method: nonEmptyString,
    file_path: nonEmptyString,
    save_interval_ms: ms(),
    channel_size: intRange(1),
    lock_ttl_ms: ms(),
    lock_index: nonEmptyString,
    // queue (builtin): defaults for topics, and our limits
    max_attempts: intRange(1),
    backoff_ms: ms(0),
    concurrency: intRange(1),
    poll_interval_ms: ms(),
    mode: oneOf(['standard', 'concurrent', 'fifo']),
    max_depth: intRange(1),
    max_queue_bytes: intRange(1, undefined, 'bytes'),
    max_message_bytes: intRange(1, undefined, 'bytes'),
    max_topic_backlog: intRange(0),
    max_topics: intRange(1),
    max_dead_letters: intRange(0),
  },
  { open: true, noun: 'a mapping of adapter options' },
);

/** `adapter: {name, config?}` (§1.5): a missing block means the module's default backend. */
function adapter(names: readonly string[], def: string): SchemaTree {
  return {
    name: leaf(oneOf(names), def, 'Backend of the module.', { required: true }),
    config: leaf(adapterOptions, null, 'Backend options, e.g. `redis_url` for redis.'),
  };
}

const metadataFilter: Shape = record({ metadata: { shape: anyMapping, required: true } });

/** iii v0.23: `{match: "pattern", namespace?: "ns"}` (see src/engine/access/function-filter.ts). */
const namespacedFilter: Shape = record({ match: { shape: nonEmptyString, required: true }, namespace: nonEmptyString });

const FUNCTION_FILTER_EXPECTED =
  'a function filter: match("pattern"), {metadata: {...}} or {match: "pattern", namespace: "ns"}';
const anyFunctionFilter: Shape = anyOf(FUNCTION_FILTER_EXPECTED, nonEmptyString, metadataFilter, namespacedFilter);

/**
 * `match("pattern")` / `match('pattern')`, `{metadata: {key: value | match(...)}}` (§4.3), or
 * `{match, namespace}` (v0.23). A mapping with a `match` or `metadata` key is checked as that
 * form, so the error names the field that is wrong (`[0].namespace: expected ...`).
 */
const functionFilter: Shape = {
  expected: FUNCTION_FILTER_EXPECTED,
  assert(value, path) {
    if (isPlainObject(value) && 'match' in value) namespacedFilter.assert(value, path);
    else if (isPlainObject(value) && 'metadata' in value) metadataFilter.assert(value, path);
    else anyFunctionFilter.assert(value, path);
  },
};

/**
 * ours: `tls: {cert_file, key_file, min_version?}` on a listener (worker manager, http, stream):
 * it serves https:// and wss:// only. Read at config load (src/transport/tls.ts). Without it,
 * `III_TLS_CERT_FILE` + `III_TLS_KEY_FILE` apply.
 */
const tlsBlock: Shape = record({
  cert_file: { shape: nonEmptyString, required: true },
  key_file: { shape: nonEmptyString, required: true },
  min_version: oneOf(TLS_VERSIONS),
});
const tls = (): Leaf =>
  leaf(
    tlsBlock,
    null,
    'ours: serve this listener over TLS with these PEM files (cert_file, key_file, min_version: TLSv1.2 by default).',
  );

// --- iii-worker-manager (§4.1) ---------------------------------------------------------------

export const workerManagerSchema: SchemaTree = {
  port: leaf(port, 49134, 'Port of the worker WebSocket listener; the first listener is the main port.'),
  host: leaf(host, '0.0.0.0', 'Address to bind.'),
  handshake_timeout_ms: leaf(ms(), 10000, 'Deadline for the TLS handshake and for reading the HTTP upgrade request.'),
  tls: tls(),
  middleware_function_id: leaf(functionId, null, 'Function every non-engine:: invocation is diverted to.'),
  rbac: {
    auth_function_id: leaf(functionId, null, 'Called on every connection to authenticate it.'),
    expose_functions: leaf(listOf(functionFilter), [], 'Functions callers on this port may invoke.'),
    on_function_registration_function_id: leaf(functionId, null, 'Hook approving function registrations.'),
    on_trigger_registration_function_id: leaf(functionId, null, 'Hook approving trigger registrations.'),
    on_trigger_type_registration_function_id: leaf(functionId, null, 'Hook approving trigger type registrations.'),
  },
  // ours: shared token and protected mode (docs/PROTOCOL.md "Access control").
  auth_token: leaf(
    nonEmptyString,
    null,
    'ours: workers must present this token (Bearer header or ?token=); default: env III_WORKER_TOKEN.',
  ),
  protected_mode: leaf(
    bool,
    true,
    'ours: without a token or auth function, a non-loopback listener accepts loopback peers only.',
  ),
  // ours: limits, read from the first listener only (docs: LimitsConfig).
  max_message_bytes: leaf(intRange(1024, undefined, 'bytes'), 16 * MiB, 'ours: largest message a worker may send.'),
  max_pending_calls_per_worker: leaf(intRange(1), 10000, 'ours: calls one connection may have outstanding.'),
  max_send_queue_bytes: leaf(
    intRange(1024, undefined, 'bytes'),
    32 * MiB,
    'ours: bytes queued for a slow reader before it is closed.',
  ),
  max_payload_bytes: leaf(
    intRange(1, undefined, 'bytes'),
    8 * MiB,
    'ours: largest invokefunction/invocationresult frame; a larger one is answered payload_too_large.',
  ),
  max_pending_calls_per_node: leaf(
    intRange(1),
    100000,
    'ours: calls this node may have pending at once; more are refused with limit_exceeded.',
  ),
  max_registrations_per_worker: leaf(
    intRange(1),
    10000,
    'ours: functions, trigger types and triggers one connection may have registered; more are refused with limit_exceeded.',
  ),
  max_connections_per_address: leaf(
    intRange(0),
    1024,
    'ours: worker and /otel sockets one client address may hold (0 = unlimited); more get HTTP 429.',
  ),
};

/** Keys of the worker-manager block that are engine-wide limits (first listener only). */
export const LIMIT_KEYS = [
  'max_message_bytes',
  'max_pending_calls_per_worker',
  'max_send_queue_bytes',
  'max_payload_bytes',
  'max_pending_calls_per_node',
  'max_connections_per_address',
  'max_registrations_per_worker',
] as const;

// --- iii-http (§5.1) -------------------------------------------------------------------------

export const httpSchema: SchemaTree = {
  port: leaf(port, 3111, 'HTTP trigger server port.'),
  host: leaf(host, '0.0.0.0', 'Address to bind.'),
  default_timeout: leaf(ms(), 30000, 'Whole-request timeout and per-middleware timeout.'),
  concurrency_request_limit: leaf(intRange(0), 1024, 'Requests served at once (0 is treated as 1).'),
  max_queued_requests: leaf(
    intRange(0),
    4096,
    'ours: requests that may wait for a slot when all are busy (0 = none); more are answered 503 SERVER_BUSY.',
  ),
  body_limit_bytes: leaf(
    intRange(1, undefined, 'bytes'),
    10 * MiB,
    'ours: largest request body; a larger one is answered 413.',
  ),
  max_header_count: leaf(intRange(1), 100, 'ours: request headers a request may carry; more are answered 431.'),
  max_connections_per_address: leaf(
    intRange(0),
    1024,
    'ours: connections one client address may hold open (0 = unlimited); more are answered 429 and closed.',
  ),
  cors: {
    allowed_origins: leaf(listOf(nonEmptyString, 'origins'), [], 'Empty or containing "*" = any origin.'),
    allowed_methods: leaf(listOf(nonEmptyString, 'methods'), [], 'Empty = any method.'),
  },
  middleware: leaf(
    listOf(
      record({
        function_id: { shape: functionId, required: true },
        phase: nonEmptyString,
        priority: integer,
      }),
      'middleware entries {function_id, phase?, priority?}',
    ),
    [],
    'Global middleware, run in ascending priority (only phase preHandler runs).',
  ),
  tls: tls(),
};

// --- iii-stream (§9.1) -----------------------------------------------------------------------

export const streamSchema: SchemaTree = {
  port: leaf(port, 3112, 'Stream client WebSocket port.'),
  host: leaf(host, '0.0.0.0', 'Address to bind.'),
  auth_function: leaf(functionId, null, 'Function called on every client WebSocket upgrade.'),
  adapter: adapter(['kv', 'redis', 'bridge'], 'kv'),
  max_connections_per_address: leaf(
    intRange(0),
    1024,
    'ours: WebSocket and Socket.IO clients one address may hold (0 = unlimited); more are refused (429).',
  ),
  max_frame_bytes: leaf(
    intRange(1024, undefined, 'bytes'),
    MAX_CLIENT_FRAME_BYTES,
    'ours: largest frame (or Socket.IO message) a client may send; a larger one closes its connection (1009).',
  ),
  max_subscriptions_per_connection: leaf(
    intRange(1),
    MAX_SUBSCRIPTIONS_PER_CLIENT,
    'ours: subscriptions one client connection may hold; one more join is refused with limit_exceeded.',
  ),
  max_send_buffer_bytes: leaf(
    intRange(1024, undefined, 'bytes'),
    MAX_CLIENT_SEND_BUFFER_BYTES,
    'ours: bytes queued for a client that stopped reading before its connection is cut.',
  ),
  tls: tls(),
};

// --- iii-state (§8.1) ------------------------------------------------------------------------

export const stateSchema: SchemaTree = {
  adapter: adapter(['kv', 'redis', 'bridge'], 'kv'),
  triggers_enabled: leaf(bool, true, 'false disables all state trigger fan-out.'),
  max_value_bytes: leaf(intRange(1, undefined, 'bytes'), null, 'Largest JSON value state::set accepts.'),
  save_interval_ms: leaf(intRange(100, 3600000, 'milliseconds'), 5000, 'kv adapter flush interval.'),
};

// --- iii-cron (§7), iii-pubsub (§10) ---------------------------------------------------------

export const cronSchema: SchemaTree = { adapter: adapter(['kv', 'redis'], 'kv') };

export const pubsubSchema: SchemaTree = { adapter: adapter(['local', 'redis'], 'local') };

// --- iii-queue (§6.2) ------------------------------------------------------------------------

const functionQueueConfig: Shape = record(
  {
    max_retries: intRange(0),
    concurrency: intRange(1),
    type: oneOf(['standard', 'fifo']),
    message_group_field: nonEmptyString,
    backoff_ms: ms(0),
    poll_interval_ms: ms(),
    max_priority: intRange(1, 255),
    priority_field: nonEmptyString,
  },
  {
    refine(value, path) {
      if (value['type'] === 'fifo' && value['message_group_field'] == null) {
        throw new ShapeError(`${path}.message_group_field`, 'a field name (required when type is "fifo")', undefined);
      }
    },
  },
);

export const queueSchema: SchemaTree = {
  queue_configs: leaf(
    mapOf(functionQueueConfig, 'queue settings {max_retries?, concurrency?, type?, ...}'),
    null,
    'Named queues (a "default" queue always exists).',
  ),
  adapter: adapter(['builtin', 'redis', 'bullmq', 'rabbitmq', 'bridge'], 'builtin'),
};

// --- iii-observability (§11.1) ---------------------------------------------------------------

const alertRule: Shape = record({
  name: { shape: nonEmptyString, required: true },
  metric: { shape: nonEmptyString, required: true },
  threshold: { shape: numberRange(), required: true },
  operator: {
    shape: oneOf([
      '>',
      '>=',
      '<',
      '<=',
      '==',
      '!=',
      'greaterthan',
      'greaterthanorequal',
      'lessthan',
      'lessthanorequal',
      'equal',
      'notequal',
    ]),
    required: true,
  },
  window_seconds: intRange(1),
  cooldown_seconds: intRange(0),
  enabled: bool,
  action: record({
    type: { shape: oneOf(['log', 'webhook', 'function']), required: true },
    url: nonEmptyString,
    path: nonEmptyString,
  }),
});

const samplingConfig: Shape = record({
  default: numberRange(),
  parent_based: bool,
  rules: listOf(
    record({ operation: nonEmptyString, service: nonEmptyString, rate: { shape: numberRange(), required: true } }),
  ),
  rate_limit: record({ max_traces_per_second: { shape: numberRange(0), required: true } }),
});

/**
 * iii v0.23 `trace_storage`: traces kept on disk. Accepted and type-checked (unimplemented.ts
 * warns); other keys are let through, as v0.23 may add more than the ones listed here.
 */
const traceStorage: Shape = record(
  {
    enabled: bool,
    directory: nonEmptyString,
    max_disk_bytes: intRange(0, undefined, 'bytes'),
    retention_seconds: intRange(0, undefined, 'seconds'),
    memory_max_bytes: intRange(0, undefined, 'bytes'),
  },
  { open: true, noun: 'a mapping {enabled?, directory?, max_disk_bytes?, retention_seconds?, memory_max_bytes?, ...}' },
);

/** Defaults are the original's "no block at all" defaults (a partial block differs: §11.1). */
export const observabilitySchema: SchemaTree = {
  enabled: leaf(bool, true, 'Master switch.'),
  service_name: leaf(nonEmptyString, 'iii', 'OTel service name.'),
  service_version: leaf(nonEmptyString, ENGINE_VERSION, 'OTel service version.'),
  service_namespace: leaf(nonEmptyString, null, 'OTel service namespace.'),
  exporter: leaf(oneOf(['memory', 'otlp', 'both']), 'memory', 'Where spans go.'),
  endpoint: leaf(nonEmptyString, 'http://localhost:4317', 'OTLP endpoint.'),
  sampling_ratio: leaf(numberRange(), 1.0, 'Trace sampling ratio (clamped to 0..1).'),
  memory_max_spans: leaf(intRange(0), 1000000, 'Spans kept by the memory exporter.'),
  live_spans: leaf(bool, null, 'Keep pending spans visible (default: on for the memory exporter).'),
  metrics_enabled: leaf(bool, true, 'Collect metrics.'),
  metrics_exporter: leaf(oneOf(['memory', 'otlp']), 'memory', 'Where metrics go.'),
  metrics_retention_seconds: leaf(intRange(0), 3600, 'Memory metrics retention.'),
  metrics_max_count: leaf(intRange(0), 10000, 'Memory metrics kept.'),
  logs_enabled: leaf(bool, true, 'Collect logs.'),
  logs_exporter: leaf(oneOf(['memory', 'otlp', 'both']), 'memory', 'Where logs go.'),
  logs_max_count: leaf(intRange(0), 1000, 'Memory logs kept.'),
  logs_retention_seconds: leaf(intRange(0), 3600, 'Memory logs retention.'),
  logs_sampling_ratio: leaf(numberRange(), 1.0, 'Log sampling ratio (clamped to 0..1).'),
  logs_console_output: leaf(bool, true, 'Also print logs on the console.'),
  logs_batch_size: leaf(intRange(1), 100, 'OTLP log batch size.'),
  logs_flush_interval_ms: leaf(ms(), 5000, 'OTLP log flush interval.'),
  level: leaf(oneOf(['trace', 'debug', 'info', 'warn', 'error']), 'info', 'Engine log level.'),
  format: leaf(oneOf(['default', 'json']), 'default', 'Engine log format.'),
  sampling: leaf(samplingConfig, null, 'Trace sampling rules.'),
  collapse_spans: leaf(
    listOf(record({ name: { shape: nonEmptyString, required: true }, service: nonEmptyString })),
    [],
    'Spans folded into their parent.',
  ),
  alerts: leaf(listOf(alertRule, 'alert rules'), [], 'Metric alerts, evaluated every 10 s.'),
  trace_storage: leaf(traceStorage, null, 'iii v0.23: traces on disk (accepted, not implemented).'),
};

// --- configuration (§3) ----------------------------------------------------------------------

export const configurationSchema: SchemaTree = {
  adapter: adapter(['fs', 'redis', 'memory', 'bridge'], 'fs'),
  ttl_seconds: leaf(
    intRange(0, undefined, 'seconds'),
    0,
    'Delete an id this long after its last watcher left (0 = never).',
  ),
};

// --- iii-http-functions, iii-exec, iii-bridge, iii-engine-functions (§12) --------------------

export const httpFunctionsSchema: SchemaTree = {
  security: {
    url_allowlist: leaf(listOf(nonEmptyString, 'URL patterns'), ['*'], 'URLs functions may point at ([] = ["*"]).'),
    block_private_ips: leaf(bool, true, 'Refuse URLs resolving to private addresses.'),
    require_https: leaf(bool, true, 'Refuse plain http:// URLs.'),
  },
};

/** At least one command: the last one is the process iii-exec keeps running. */
const execCommands: Shape = {
  expected: 'a non-empty list of shell commands',
  assert(value, path) {
    listOf(nonEmptyString, 'shell commands').assert(value, path);
    if ((value as unknown[]).length === 0)
      throw new ShapeError(path, this.expected, value, 'expected at least one shell command, got an empty list');
  },
};

export const execSchema: SchemaTree = {
  exec: leaf(
    execCommands,
    null,
    'Commands run in order at boot; each must exit 0 before the next starts; the last is kept running.',
    { required: true },
  ),
  watch: leaf(
    listOf(nonEmptyString, 'glob patterns'),
    [],
    'Files that restart the pipeline (matched by root directory and extension).',
  ),
};

export const bridgeSchema: SchemaTree = {
  url: leaf(urlWithScheme(['ws', 'wss']), 'ws://0.0.0.0:49134', 'Engine to connect to (default: env III_URL).'),
  auth_token: leaf(nonEmptyString, null, "Ours: the remote engine's worker token (default: env III_BRIDGE_TOKEN)."),
  service_id: leaf(nonEmptyString, null, 'Service id announced to the remote engine.'),
  service_name: leaf(nonEmptyString, null, 'Service name announced to the remote engine.'),
  expose: leaf(
    listOf(record({ local_function: { shape: functionId, required: true }, remote_function: functionId })),
    [],
    'Local functions offered to the remote engine.',
  ),
  forward: leaf(
    listOf(
      record({
        local_function: { shape: functionId, required: true },
        remote_function: { shape: functionId, required: true },
        timeout_ms: ms(),
      }),
    ),
    [],
    'Remote functions made callable locally.',
  ),
};

export const engineFunctionsSchema: SchemaTree = {};

// --- our own top-level sections --------------------------------------------------------------

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A node id ends up in Redis keys and channel names: no whitespace, at most 128 chars. */
/** Node ids end up in Redis keys, channel names, metric labels and logs: printable ASCII only. */
const NODE_ID_EXPECTED = 'a node id (1-128 printable ASCII characters, no spaces)';
export const nodeId: Shape = {
  expected: NODE_ID_EXPECTED,
  assert(value, path) {
    if (typeof value !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(value))
      throw new ShapeError(path, NODE_ID_EXPECTED, value);
  },
};

export const engineSchema: SchemaTree = {
  node_id: leaf(nodeId, null, "This node's id (default: <hostname>-<6 hex>)."),
  log_level: leaf(oneOf(LOG_LEVELS), null, 'Log threshold (default: iii-observability level, else info).'),
  invocation_timeout_ms: leaf(ms(), 30000, 'Engine-side deadline of every synchronous call.'),
  drain_grace_ms: leaf(
    ms(0),
    25000,
    'On SIGTERM, how long calls in flight may take to finish before they fail with engine_shutting_down.',
  ),
  metrics: {
    host: leaf(host, '0.0.0.0', 'Prometheus /metrics address.'),
    port: leaf(port, 9464, 'Prometheus /metrics port.'),
  },
  console: {
    host: leaf(host, '0.0.0.0', 'ours: web console address (like the other listeners).'),
    port: leaf(port, null, 'ours: web console port; off unless set (env III_CONSOLE_PORT; 0 picks a free port).'),
    read_only: leaf(
      bool,
      false,
      'ours: the console shows everything but refuses every change (403); env III_CONSOLE_READ_ONLY=true.',
    ),
  },
  channels: {
    ttl_ms: leaf(ms(), 300000, 'A channel not fully connected within this is removed.'),
    default_buffer_messages: leaf(intRange(1), 64, 'Messages buffered between writer and reader by default.'),
    max_buffer_messages: leaf(intRange(1), 1024, 'Largest buffer a channel may ask for.'),
    max_buffer_bytes: leaf(
      intRange(1024, undefined, 'bytes'),
      16 * MiB,
      'ours: payload bytes a channel buffers before its writer is paused.',
    ),
    max_open: leaf(
      intRange(1),
      100000,
      'ours: channels open on this node at once; more are refused with limit_exceeded.',
    ),
  },
};

/**
 * iii v0.23 top-level `registration_namespace_grace_ms` (env `III_NAMESPACE_GRACE_MS`, default
 * 5000): how long registrations wait for their worker's namespace. Checked, then unused.
 */
export const namespaceGraceMs: Shape = intRange(0, undefined, 'milliseconds');

/** Any string, "" included (a `${VAR:}` that expands to nothing means unset). */
const anyString: Shape = {
  expected: 'a string',
  coercion: 'none',
  assert(value, path) {
    if (typeof value !== 'string') throw new ShapeError(path, 'a string', value);
  },
};

/** The form only; each entry is parsed (host, port) when the config is assembled. */
const sentinelList: Shape = anyOf(
  'host:port,host:port... or a list of host:port (or "" for none)',
  anyString,
  listOf(nonEmptyString),
);

export const clusterSchema: SchemaTree = {
  redis_url: leaf(
    urlWithScheme(['redis', 'rediss'], { allowEmpty: true }),
    null,
    'Cluster mode is on when set; rediss:// turns TLS on. The password may be in the URL or in III_REDIS_PASSWORD.',
  ),
  redis_sentinels: leaf(
    sentinelList,
    null,
    "ours: Sentinel mode, instead of redis_url: the sentinels (host:port, port default 26379) asked for the primary, with redis_sentinel_name. Sentinel password: III_REDIS_SENTINEL_PASSWORD; the data nodes' password: III_REDIS_PASSWORD.",
  ),
  redis_cluster_nodes: leaf(
    sentinelList,
    null,
    'ours: Cluster mode, instead of redis_url: some nodes of a Redis Cluster (host:port, port default 6379); the client learns the others. Password: III_REDIS_PASSWORD; TLS: redis_tls.',
  ),
  redis_sentinel_name: leaf(
    anyString,
    null,
    "ours: Sentinel mode: the primary's name in the sentinels (sentinel monitor <name> ...).",
  ),
  redis_tls: leaf(
    bool,
    false,
    'ours: Sentinel and Cluster mode only: TLS to the sentinels and the data nodes (with redis_url, rediss:// decides).',
  ),
  redis_tls_ca_file: leaf(
    nonEmptyString,
    null,
    'PEM file of the CA(s) trusted for rediss:// connections (and redis_tls); default: the system store.',
  ),
  key_prefix: leaf(
    nonEmptyString,
    'iii:',
    'Prepended to every Redis key and channel, so clusters can share one Redis.',
  ),
  advertise_host: leaf(
    nonEmptyString,
    null,
    'Host other nodes use to reach this node (relayed data channels, direct bus links); default: the listener host, or the first non-loopback IPv4 address.',
  ),
  bus: leaf(
    oneOf(CLUSTER_BUSES),
    'redis',
    'ours: how calls and results travel between nodes: redis (pub/sub) or direct (node-to-node WebSocket links, Redis pub/sub when a link is down).',
  ),
};
