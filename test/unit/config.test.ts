import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { redisTarget } from '../../src/cluster/redis-target';
import { ConfigError, loadConfig, type LoadedConfig } from '../../src/config/load';
import { NOT_IMPLEMENTED_KEYS } from '../../src/config/unimplemented';
import { ENGINE_VERSION } from '../../src/config/version';
import { resolveModuleConfig, workerSpec } from '../../src/config/workers';
import {
  MAX_CLIENT_FRAME_BYTES,
  MAX_CLIENT_SEND_BUFFER_BYTES,
  MAX_SUBSCRIPTIONS_PER_CLIENT,
} from '../../src/config/stream-limits';

const repoRoot = path.resolve(__dirname, '../..');
let dir: string;
let fileCount = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-config-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `yaml` to a fresh file in the tmp dir and returns its path. */
function writeYaml(yaml: string): string {
  fileCount += 1;
  const file = path.join(dir, `config-${fileCount}.yaml`);
  fs.writeFileSync(file, yaml);
  return file;
}

function load(yaml: string, env: NodeJS.ProcessEnv = {}): LoadedConfig & { file: string } {
  const file = writeYaml(yaml);
  return { ...loadConfig({ path: file, env }), file };
}

/** The ConfigError `fn` throws (fails the test if it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

function loadError(yaml: string, env: NodeJS.ProcessEnv = {}): { message: string; file: string } {
  const file = writeYaml(yaml);
  return { message: configError(() => loadConfig({ path: file, env })).message, file };
}

describe('built-in defaults (no file)', () => {
  const { config, warnings } = loadConfig({ env: {} });

  it('turns every built-in module on with an empty config', () => {
    for (const id of [
      'http',
      'stream',
      'state',
      'pubsub',
      'queue',
      'cron',
      'observability',
      'configuration',
      'telemetry',
    ]) {
      expect(config.modules[id]).toEqual({ enabled: true, config: {} });
    }
    expect(config.modules['exec'].enabled).toBe(false);
    expect(config.modules['bridge'].enabled).toBe(false);
  });

  it('has one worker listener on 0.0.0.0:49134 and the default limits', () => {
    expect(config.listeners).toEqual([
      {
        instanceId: 'iii-worker-manager',
        host: '0.0.0.0',
        port: 49134,
        handshakeTimeoutMs: 10000,
        protectedMode: true,
      },
    ]);
    expect(config.limits).toEqual({
      maxMessageBytes: 16 * 1024 * 1024,
      maxPendingCallsPerWorker: 10000,
      maxSendQueueBytes: 32 * 1024 * 1024,
      maxPayloadBytes: 8 * 1024 * 1024,
      maxPendingCallsPerNode: 100000,
      maxRegistrationsPerWorker: 10000,
      maxConnectionsPerAddress: 1024,
    });
  });

  it('enables HTTP-invoked functions with the secure defaults', () => {
    expect(config.httpFunctions).toEqual({
      enabled: true,
      security: { url_allowlist: ['*'], block_private_ips: true, require_https: true },
    });
  });

  it('uses the engine defaults, single-node mode and a generated node id', () => {
    expect(config.source).toBeUndefined();
    expect(config.invocationTimeoutMs).toBe(30000);
    expect(config.drainGraceMs).toBe(25000);
    expect(config.metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(config.channels).toEqual({
      ttlMs: 300000,
      defaultBufferMessages: 64,
      maxBufferMessages: 1024,
      maxBufferBytes: 16 * 1024 * 1024,
      maxOpen: 100000,
    });
    expect(config.cluster).toEqual({ keyPrefix: 'iii:', bus: 'redis' });
    expect(config.logLevel).toBe('info');
    expect(config.nodeId).toMatch(new RegExp(`^${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{6}$`));
    expect(warnings).toEqual([]);
  });
});

describe('an iii v0.22 config.yaml', () => {
  const iiiConfig = `
workers:
  - name: iii-worker-manager
    config:
      port: 49134
  - name: iii-worker-manager
    config:
      host: 127.0.0.1
      port: 49135
      middleware_function_id: gate::check
      rbac:
        auth_function_id: auth::validate
        expose_functions:
          - match("api::*")
          - metadata:
              public: true
        on_function_registration_function_id: hooks::on-function
  - name: iii-http
    config:
      port: 3111
      host: 127.0.0.1
      default_timeout: 30000
      concurrency_request_limit: 1024
      cors:
        allowed_origins: ["*"]
        allowed_methods: [GET, POST]
      middleware:
        - function_id: mw::auth
          phase: preHandler
          priority: 1
  - name: iii-state
    config:
      adapter:
        name: kv
        config:
          store_method: file_based
          file_path: ./data/state_store
  - name: iii-cron
    config:
      adapter:
        name: kv
  - name: iii-stream
    config:
      port: 3112
      host: 127.0.0.1
      adapter:
        name: kv
        config:
          store_method: in_memory
`;

  it('loads every worker with its block as written', () => {
    const { config, warnings, file } = load(iiiConfig);
    expect(config.source).toBe(path.resolve(file));
    expect(config.modules['http']).toEqual({
      enabled: true,
      entryName: 'iii-http',
      config: {
        port: 3111,
        host: '127.0.0.1',
        default_timeout: 30000,
        concurrency_request_limit: 1024,
        cors: { allowed_origins: ['*'], allowed_methods: ['GET', 'POST'] },
        middleware: [{ function_id: 'mw::auth', phase: 'preHandler', priority: 1 }],
      },
    });
    expect(config.modules['state'].config).toEqual({
      adapter: { name: 'kv', config: { store_method: 'file_based', file_path: './data/state_store' } },
    });
    expect(config.modules['cron']).toEqual({
      enabled: true,
      entryName: 'iii-cron',
      config: { adapter: { name: 'kv' } },
    });
    expect(config.modules['stream'].config['port']).toBe(3112);
    expect(warnings).toEqual([]);
  });

  it('turns off unlisted optional modules and keeps the mandatory ones on', () => {
    const { config } = load(iiiConfig);
    expect(config.modules['pubsub']).toEqual({ enabled: false, config: {} });
    expect(config.modules['queue'].enabled).toBe(false);
    expect(config.httpFunctions.enabled).toBe(false);
    expect(config.modules['observability']).toEqual({ enabled: true, config: {} });
    expect(config.modules['configuration'].enabled).toBe(true);
    expect(config.modules['telemetry'].enabled).toBe(true);
  });

  it('makes one listener per iii-worker-manager entry, numbering the repeats', () => {
    const { config } = load(iiiConfig);
    expect(config.listeners).toEqual([
      {
        instanceId: 'iii-worker-manager',
        host: '0.0.0.0',
        port: 49134,
        handshakeTimeoutMs: 10000,
        protectedMode: true,
      },
      {
        instanceId: 'iii-worker-manager#1',
        host: '127.0.0.1',
        port: 49135,
        handshakeTimeoutMs: 10000,
        protectedMode: true,
        middlewareFunctionId: 'gate::check',
        rbac: {
          auth_function_id: 'auth::validate',
          expose_functions: ['match("api::*")', { metadata: { public: true } }],
          on_function_registration_function_id: 'hooks::on-function',
        },
      },
    ]);
  });

  it('adds the default listener when no iii-worker-manager is listed', () => {
    const { config } = load('workers:\n  - name: iii-http\n');
    expect(config.listeners.map((l) => [l.instanceId, l.host, l.port])).toEqual([
      ['iii-worker-manager', '0.0.0.0', 49134],
    ]);
  });

  it('reads the limits from the first listener and warns about them on the others', () => {
    const { config, warnings } = load(`
workers:
  - name: iii-worker-manager
    config: {max_message_bytes: 1048576, max_pending_calls_per_worker: 50, max_send_queue_bytes: 2097152}
  - name: iii-worker-manager
    config: {port: 49135, max_message_bytes: 4096}
`);
    expect(config.limits).toMatchObject({
      maxMessageBytes: 1048576,
      maxPendingCallsPerWorker: 50,
      maxSendQueueBytes: 2097152,
    });
    expect(warnings).toEqual([
      'iii-worker-manager#1: key "max_message_bytes" is ignored; limits are read from the first iii-worker-manager entry',
    ]);
  });

  it('reads max_payload_bytes, max_pending_calls_per_node and max_connections_per_address (0 = unlimited) from the first listener', () => {
    const { config, warnings } = load(`
workers:
  - name: iii-worker-manager
    config: {max_payload_bytes: 65536, max_pending_calls_per_node: 500, max_connections_per_address: 0}
  - name: iii-worker-manager
    config: {port: 49135, max_connections_per_address: 3}
`);
    expect(config.limits).toMatchObject({
      maxPayloadBytes: 65536,
      maxPendingCallsPerNode: 500,
      maxConnectionsPerAddress: 0,
    });
    expect(warnings).toEqual([
      'iii-worker-manager#1: key "max_connections_per_address" is ignored; limits are read from the first iii-worker-manager entry',
    ]);
  });

  it('refuses a max_pending_calls_per_node of 0 and a negative max_connections_per_address', () => {
    expect(
      loadError('workers:\n  - name: iii-worker-manager\n    config: {max_pending_calls_per_node: 0}\n').message,
    ).toMatch(/max_pending_calls_per_node/);
    expect(loadError('workers:\n  - name: iii-http\n    config: {max_connections_per_address: -1}\n').message).toMatch(
      /max_connections_per_address/,
    );
    expect(loadError('workers:\n  - name: iii-http\n    config: {max_header_count: 0}\n').message).toMatch(
      /max_header_count/,
    );
  });

  it('iii-stream: max_frame_bytes, max_subscriptions_per_connection and max_send_buffer_bytes default to the stream/limits.ts constants and are read as written', () => {
    expect(resolveModuleConfig('stream')).toMatchObject({
      max_frame_bytes: MAX_CLIENT_FRAME_BYTES,
      max_subscriptions_per_connection: MAX_SUBSCRIPTIONS_PER_CLIENT,
      max_send_buffer_bytes: MAX_CLIENT_SEND_BUFFER_BYTES,
    });
    const { config, warnings } = load(
      'workers:\n  - name: iii-stream\n    config: {max_frame_bytes: 1024, max_subscriptions_per_connection: 1, max_send_buffer_bytes: 1024}\n',
    );
    expect(warnings).toEqual([]);
    expect(resolveModuleConfig('stream', config.modules['stream'].config)).toMatchObject({
      max_frame_bytes: 1024,
      max_subscriptions_per_connection: 1,
      max_send_buffer_bytes: 1024,
    });
  });

  it('iii-stream: refuses a max_frame_bytes or max_send_buffer_bytes below 1024 and a max_subscriptions_per_connection below 1', () => {
    const stream = (key: string, value: number) =>
      loadError(`workers:\n  - name: iii-stream\n    config: {${key}: ${value}}\n`).message;
    expect(stream('max_frame_bytes', 1023)).toContain(
      'workers[0] (iii-stream).config.max_frame_bytes: expected an integer >= 1024 (bytes), got 1023',
    );
    expect(stream('max_send_buffer_bytes', 0)).toContain(
      'workers[0] (iii-stream).config.max_send_buffer_bytes: expected an integer >= 1024 (bytes), got 0',
    );
    expect(stream('max_subscriptions_per_connection', 0)).toContain(
      'workers[0] (iii-stream).config.max_subscriptions_per_connection: expected an integer >= 1, got 0',
    );
  });

  it('merges the legacy modules: list after workers', () => {
    const { config } = load(
      'workers:\n  - name: iii-http\nmodules:\n  - name: iii-worker-manager\n    config: {port: 40000}\n',
    );
    expect(config.modules['http'].enabled).toBe(true);
    expect(config.listeners[0].port).toBe(40000);
  });

  it('treats an empty worker list as "mandatory workers only"', () => {
    const { config } = load('workers: []\n');
    expect(
      Object.entries(config.modules)
        .filter(([, m]) => m.enabled)
        .map(([id]) => id)
        .sort(),
    ).toEqual(['configuration', 'observability', 'telemetry']);
  });

  it('fills iii-http-functions security defaults and reads an empty allowlist as ["*"]', () => {
    const { config } = load(`
workers:
  - name: iii-http-functions
    config:
      security: {url_allowlist: [], require_https: false}
`);
    expect(config.httpFunctions).toEqual({
      enabled: true,
      security: { url_allowlist: ['*'], block_private_ips: true, require_https: false },
    });
  });
});

describe('worker names', () => {
  it('accepts the v0.22 short names as aliases of the iii-* names', () => {
    const { config } = load(`
workers:
  - name: http
  - name: state
  - name: cron
  - name: pubsub
  - name: queue
`);
    for (const id of ['http', 'state', 'cron', 'pubsub', 'queue']) {
      expect(config.modules[id]).toEqual({ enabled: true, entryName: id, config: {} });
    }
  });

  it('refuses both names of a pair, listing each pair', () => {
    const { message, file } = loadError(
      'workers:\n  - name: iii-http\n  - name: http\n  - name: cron\n  - name: iii-cron\n',
    );
    expect(message).toContain(file);
    expect(message).toContain('Duplicate worker configurations: "iii-http" and "http"; "iii-cron" and "cron"');
  });

  it('refuses a non-repeatable worker listed twice', () => {
    const { message } = loadError('workers:\n  - name: iii-stream\n  - name: iii-stream\n');
    expect(message).toContain('workers[1] (iii-stream): "iii-stream" is listed more than once');
  });

  it('loads a worker that is not a built-in as an external worker, starting nothing and warning once', () => {
    const { config, warnings, file } = load('workers:\n  - name: iii-http\n  - name: my-orders-worker\n');
    expect(warnings).toEqual([
      `${file}: workers[1]: worker "my-orders-worker" (registry worker): external workers are not started by iii-cluster; run it yourself and point it at this engine (ws://localhost:49134)`,
    ]);
    expect(config.modules['http'].enabled).toBe(true);
  });

  it('refuses an unknown iii- name as a misspelt built-in, naming it', () => {
    const { message, file } = loadError('workers:\n  - name: iii-http\n  - name: iii-orders-worker\n');
    expect(message).toContain(
      `${file}: workers[1]: unknown worker "iii-orders-worker" (iii- names are iii's own workers; the built-ins are iii-worker-manager,`,
    );
  });

  it('refuses an image on a built-in worker', () => {
    const { message } = loadError('workers:\n  - name: iii-http\n    image: ghcr.io/x/http:1\n');
    expect(message).toContain('workers[0] (iii-http).image: "iii-http" is a built-in worker and cannot take an image');
  });
});

describe('${VAR} expansion', () => {
  it('uses the default when the variable is unset and the value when it is set', () => {
    const yaml = 'workers:\n  - name: iii-http\n    config:\n      host: ${HTTP_HOST:127.0.0.1}\n';
    expect(load(yaml).config.modules['http'].config['host']).toBe('127.0.0.1');
    expect(load(yaml, { HTTP_HOST: '10.0.0.5' }).config.modules['http'].config['host']).toBe('10.0.0.5');
  });

  it('lets a set-but-empty variable beat the default', () => {
    const yaml = 'workers:\n  - name: iii-observability\n    config:\n      service_name: "svc${SUFFIX:-default}"\n';
    expect(load(yaml, { SUFFIX: '' }).config.modules['observability'].config['service_name']).toBe('svc');
    expect(load(yaml).config.modules['observability'].config['service_name']).toBe('svc-default');
  });

  it('fails on an unset variable without default, naming the variable and the file', () => {
    const { message, file } = loadError('workers:\n  - name: iii-http\n    config:\n      port: ${HTTP_PORT}\n');
    expect(message).toBe(
      `${file}: environment variable 'HTTP_PORT' is not set and has no default (at workers[0].config.port)`,
    );
  });

  it('re-types an unquoted value that is exactly one placeholder', () => {
    const yaml =
      'workers:\n  - name: iii-http\n    config:\n      port: ${PORT:3111}\n  - name: iii-state\n    config:\n      triggers_enabled: ${TRIGGERS:true}\n';
    const defaults = load(yaml).config;
    expect(defaults.modules['http'].config['port']).toBe(3111);
    expect(defaults.modules['state'].config['triggers_enabled']).toBe(true);
    const fromEnv = load(yaml, { PORT: '8080', TRIGGERS: 'false' }).config;
    expect(fromEnv.modules['http'].config['port']).toBe(8080);
    expect(fromEnv.modules['state'].config['triggers_enabled']).toBe(false);
  });

  it('keeps quoted placeholders and placeholders inside longer strings as strings', () => {
    const { config } = load(`
workers:
  - name: iii-observability
    config:
      service_version: "\${VERSION:1.0}"
      service_name: api-\${N:7}
`);
    expect(config.modules['observability'].config['service_version']).toBe('1.0');
    expect(config.modules['observability'].config['service_name']).toBe('api-7');
  });

  it('keeps ":" and "#" in expanded values intact', () => {
    const { config } = load('cluster:\n  redis_url: ${REDIS:redis://cache:6379/0}\n', {});
    expect(config.cluster.redisUrl).toBe('redis://cache:6379/0');
    const withHash = load('workers:\n  - name: iii-observability\n    config:\n      service_name: ${NAME}\n', {
      NAME: 'a # b: c',
    });
    expect(withHash.config.modules['observability'].config['service_name']).toBe('a # b: c');
  });

  it('expands the __III_ENGINE_VERSION__ default to the package version', () => {
    const { config } = load(
      'workers:\n  - name: iii-observability\n    config:\n      service_version: ${SERVICE_VERSION:__III_ENGINE_VERSION__}\n',
    );
    expect(config.modules['observability'].config['service_version']).toBe(ENGINE_VERSION);
    expect(ENGINE_VERSION).toBe(JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version);
  });
});

describe('validation errors', () => {
  it('checks queue adapter limits when the file is loaded, not when the module starts', () => {
    const { message } = loadError(
      'workers:\n  - name: iii-queue\n    config:\n      adapter:\n        name: builtin\n        config:\n          max_depth: 0\n',
    );
    expect(message).toMatch(/adapter\.config\.max_depth/);
  });

  it('names the file, the key path and the known keys for an unknown key', () => {
    const { message, file } = loadError(
      'workers:\n  - name: iii-state\n  - name: iii-http\n    config:\n      prot: 3111\n',
    );
    expect(message).toBe(
      `${file}: workers[1] (iii-http).config.prot: unknown key ` +
        '(expected one of: port, host, default_timeout, concurrency_request_limit, max_queued_requests, body_limit_bytes, max_header_count, max_connections_per_address, cors, middleware, tls)',
    );
  });

  it('names the known keys of iii-stream, ours included', () => {
    const { message } = loadError('workers:\n  - name: iii-stream\n    config:\n      max_subscriptions: 5\n');
    expect(message).toContain(
      'workers[0] (iii-stream).config.max_subscriptions: unknown key ' +
        '(expected one of: port, host, auth_function, adapter, max_connections_per_address, max_frame_bytes, max_subscriptions_per_connection, max_send_buffer_bytes, tls)',
    );
  });

  it('names an unknown key inside a nested section', () => {
    const { message } = loadError(
      'workers:\n  - name: iii-worker-manager\n    config:\n      rbac:\n        expose: []\n',
    );
    expect(message).toContain(
      'workers[0] (iii-worker-manager).config.rbac.expose: unknown key (expected one of: auth_function_id,',
    );
  });

  it('says what a port must be when it is not a number', () => {
    const { message, file } = loadError(
      'workers:\n  - name: iii-worker-manager\n  - name: iii-state\n  - name: iii-http\n    config:\n      port: abc\n',
    );
    expect(message).toBe(`${file}: workers[2] (iii-http).config.port: expected a port number 0-65535, got "abc"`);
  });

  it('refuses an out-of-range port and a half-numeric one', () => {
    expect(loadError('workers:\n  - name: iii-stream\n    config:\n      port: 70000\n').message).toContain(
      'workers[0] (iii-stream).config.port: expected a port number 0-65535, got 70000',
    );
    expect(loadError('workers:\n  - name: iii-stream\n    config:\n      port: "80abc"\n').message).toContain(
      'expected a port number 0-65535, got "80abc"',
    );
  });

  it('leaves out optional keys written empty, and empty sections', () => {
    const { config } = load(
      'workers:\n  - name: iii-stream\n    config:\n      auth_function:\n      adapter: {name: redis, config: ~}\n  - name: iii-http\n    config:\n      cors:\n',
    );
    expect(config.modules['stream'].config).toEqual({ adapter: { name: 'redis' } });
    expect(config.modules['http'].config).toEqual({});
  });

  it('converts a quoted decimal port', () => {
    expect(
      load('workers:\n  - name: iii-http\n    config:\n      port: "8080"\n').config.modules['http'].config['port'],
    ).toBe(8080);
  });

  it('names the item and field of a bad free-form list entry', () => {
    const { message } = loadError(
      'workers:\n  - name: iii-http\n    config:\n      middleware:\n        - function_id: ok\n        - priority: 1\n',
    );
    expect(message).toContain('workers[0] (iii-http).config.middleware[1].function_id: expected a function id');
    expect(message).toContain('got nothing');
  });

  it('refuses an unknown adapter name, listing the known ones', () => {
    const { message } = loadError('workers:\n  - name: iii-cron\n    config:\n      adapter: {name: etcd}\n');
    expect(message).toContain('workers[0] (iii-cron).config.adapter.name: expected one of "kv", "redis", got "etcd"');
  });

  it('checks queue_configs entries', () => {
    const { message } = loadError(
      'workers:\n  - name: iii-queue\n    config:\n      queue_configs:\n        orders: {type: fifo, concurrency: 2}\n',
    );
    expect(message).toContain(
      'workers[0] (iii-queue).config.queue_configs.orders.message_group_field: expected a field name (required when type is "fifo")',
    );
  });

  it('checks our engine: and cluster: sections', () => {
    expect(loadError('engine:\n  invocation_timeout_ms: 0\n').message).toContain(
      'engine.invocation_timeout_ms: expected an integer >= 1 (milliseconds), got 0',
    );
    expect(loadError('cluster:\n  redis_url: http://localhost:6379\n').message).toContain(
      'cluster.redis_url: expected a redis:// or rediss:// URL (or "" for none), got "http://localhost:6379"',
    );
    expect(loadError('engine:\n  channels: {default_buffer_messages: 2048}\n').message).toContain(
      'engine.channels.default_buffer_messages: expected at most max_buffer_messages (1024), got 2048',
    );
  });

  it('reads the channel, HTTP waiting-line and topic bounds, and refuses values below their minimum', () => {
    const { config } = load('engine:\n  channels: {max_open: 10, max_buffer_bytes: 65536}\n');
    expect(config.channels).toMatchObject({ maxOpen: 10, maxBufferBytes: 65536 });
    expect(loadError('engine:\n  channels: {max_open: 0}\n').message).toContain(
      'engine.channels.max_open: expected an integer >= 1, got 0',
    );
    expect(loadError('engine:\n  channels: {max_buffer_bytes: 100}\n').message).toContain(
      'engine.channels.max_buffer_bytes: expected an integer >= 1024 (bytes), got 100',
    );
    expect(loadError('workers:\n  - name: iii-http\n    config: {max_queued_requests: -1}\n').message).toMatch(
      /max_queued_requests: expected an integer >= 0/,
    );
    expect(
      loadError('workers:\n  - name: iii-queue\n    config:\n      adapter: {name: builtin, config: {max_topics: 0}}\n')
        .message,
    ).toMatch(/adapter\.config\.max_topics/);
  });

  it('refuses an unknown top-level key', () => {
    const { message, file } = loadError('workers: []\nservices: {}\n');
    expect(message).toBe(
      `${file}: unknown top-level key "services" (expected workers, modules (legacy name of workers), registration_namespace_grace_ms, engine or cluster)`,
    );
  });

  it('refuses a bare `workers:`', () => {
    expect(loadError('workers:\n').message).toContain(
      'workers: expected a list (write `workers: []` for an empty one), got null',
    );
  });

  it('reports a missing file', () => {
    const missing = path.join(dir, 'does-not-exist.yaml');
    expect(configError(() => loadConfig({ path: missing, env: {} })).message).toBe(`config file not found: ${missing}`);
  });

  it('reports invalid YAML with the file and the line', () => {
    const { message, file } = loadError('workers:\n  - name: iii-http\n    config: {port: 1\n  - name: x\n');
    expect(message).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid YAML at line \\d+, column \\d+: `),
    );
  });
});

describe('environment overrides', () => {
  const yaml = `
workers:
  - name: iii-worker-manager
    config: {port: 49134}
  - name: iii-worker-manager
    config: {port: 49135}
  - name: iii-http
  - name: iii-stream
    config: {port: 3112}
engine:
  node_id: from-file
  log_level: warn
`;

  it('apply after the file', () => {
    const { config } = load(yaml, {
      III_WS_PORT: '50000',
      III_HTTP_PORT: '8080',
      III_STREAM_PORT: '8081',
      III_METRICS_PORT: '9000',
      III_NODE_ID: 'node-7',
      LOG_LEVEL: 'debug',
      III_REDIS_URL: 'redis://redis:6379',
    });
    expect(config.listeners.map((l) => l.port)).toEqual([50000, 49135]);
    expect(config.modules['http'].config['port']).toBe(8080);
    expect(config.modules['stream'].config['port']).toBe(8081);
    expect(config.metrics.port).toBe(9000);
    expect(config.nodeId).toBe('node-7');
    expect(config.logLevel).toBe('debug');
    expect(config.cluster).toEqual({ keyPrefix: 'iii:', bus: 'redis', redisUrl: 'redis://redis:6379' });
  });

  it('fall back to the file, then to iii-observability level, then to the built-in defaults', () => {
    const fromFile = load(yaml).config;
    expect(fromFile.nodeId).toBe('from-file');
    expect(fromFile.logLevel).toBe('warn');
    const fromObservability = load('workers:\n  - name: iii-observability\n    config: {level: error}\n').config;
    expect(fromObservability.logLevel).toBe('error');
    expect(load('workers: []\n').config.logLevel).toBe('info');
  });

  it('refuse a node id with control characters, non-ASCII or spaces (it ends up in Redis keys, channels and logs)', () => {
    for (const bad of ['node\u0000one', 'node\u001bone', 'nöde', 'node one', 'x'.repeat(129)]) {
      expect(() => load(yaml, { III_NODE_ID: bad })).toThrow(/III_NODE_ID.*printable ASCII/s);
    }
    expect(load(yaml, { III_NODE_ID: 'engine-1.pod_a:7' }).config.nodeId).toBe('engine-1.pod_a:7');
  });

  it('count an empty value as unset', () => {
    const { config } = load(yaml, { III_WS_PORT: '', III_NODE_ID: '' });
    expect(config.listeners[0].port).toBe(49134);
    expect(config.nodeId).toBe('from-file');
  });

  it('apply to the built-in defaults too', () => {
    const { config } = loadConfig({ env: { III_WS_PORT: '4000', III_HTTP_PORT: '4001' } });
    expect(config.listeners[0].port).toBe(4000);
    expect(config.modules['http'].config).toEqual({ port: 4001 });
  });

  it('set the drain grace from III_DRAIN_GRACE_MS over engine.drain_grace_ms', () => {
    expect(load('engine:\n  drain_grace_ms: 5000\n').config.drainGraceMs).toBe(5000);
    expect(load('engine:\n  drain_grace_ms: 5000\n', { III_DRAIN_GRACE_MS: '0' }).config.drainGraceMs).toBe(0);
    expect(configError(() => loadConfig({ env: { III_DRAIN_GRACE_MS: '-1' } })).message).toBe(
      'environment variable III_DRAIN_GRACE_MS: expected an integer >= 0 (milliseconds), got "-1"',
    );
  });

  it('choose the cluster bus from III_CLUSTER_BUS over cluster.bus, redis by default', () => {
    expect(load('cluster:\n  redis_url: redis://127.0.0.1:1\n').config.cluster.bus).toBe('redis');
    expect(load('cluster:\n  bus: direct\n').config.cluster.bus).toBe('direct');
    expect(load('cluster:\n  bus: direct\n', { III_CLUSTER_BUS: 'redis' }).config.cluster.bus).toBe('redis');
    expect(configError(() => loadConfig({ env: { III_CLUSTER_BUS: 'kafka' } })).message).toBe(
      'environment variable III_CLUSTER_BUS: expected one of "redis", "direct", got "kafka"',
    );
    expect(loadError('cluster:\n  bus: carrier-pigeon\n').message).toMatch(/cluster\.bus/);
  });

  it('refuse a bad value, naming the variable', () => {
    expect(configError(() => loadConfig({ env: { III_WS_PORT: 'abc' } })).message).toBe(
      'environment variable III_WS_PORT: expected a port number 0-65535, got "abc"',
    );
    expect(configError(() => loadConfig({ env: { LOG_LEVEL: 'loud' } })).message).toContain(
      'environment variable LOG_LEVEL',
    );
    expect(configError(() => loadConfig({ env: { III_REDIS_URL: 'localhost:6379' } })).message).toContain(
      'environment variable III_REDIS_URL: expected a redis:// or rediss:// URL',
    );
  });
});

describe('accepted but not implemented', () => {
  it('warns for each key, naming the module and the key', () => {
    const { warnings } = load(`
workers:
  - name: iii-stream
    config:
      adapter: {name: bridge, config: {bridge_url: "ws://other:49134"}}
  - name: iii-observability
    config:
      sampling: {default: 0.5}
      collapse_spans: [{name: db.query}]
      alerts:
        - {name: slow, metric: latency, threshold: 1, operator: ">", action: {type: log}}
  - name: configuration
    config:
      adapter: {name: bridge}
  - name: iii-bridge
    config:
      url: ws://other:49134
`);
    expect(warnings).toEqual([
      'iii-observability: key "collapse_spans" (span collapsing) is accepted but not implemented',
    ]);
  });

  it('does not warn for iii-exec, which is implemented', () => {
    const { config, warnings } = load(
      'workers:\n  - name: iii-exec\n    config:\n      exec: [npm run build, npm start]\n      watch: ["src/**/*.ts"]\n',
    );
    expect(warnings).toEqual([]);
    expect(config.modules['exec']).toEqual({
      enabled: true,
      entryName: 'iii-exec',
      config: { exec: ['npm run build', 'npm start'], watch: ['src/**/*.ts'] },
    });
  });

  it('refuses an iii-exec block without commands, naming the key', () => {
    expect(loadError('workers:\n  - name: iii-exec\n    config:\n      exec: []\n').message).toMatch(
      /\(iii-exec\)\.config\.exec: expected at least one shell command, got an empty list/,
    );
    expect(loadError('workers:\n  - name: iii-exec\n    config:\n      watch: [src]\n').message).toMatch(
      /\(iii-exec\)\.config\.exec: missing; expected a non-empty list of shell commands/,
    );
    expect(loadError('workers:\n  - name: iii-exec\n    config:\n      exec: npm start\n').message).toMatch(
      /config\.exec: expected a list of shell commands, got "npm start"/,
    );
  });

  it('warns for the observability options still not acted on, and not for sampling rules, alerts or OTLP logs and metrics', () => {
    const { warnings } = load(`
workers:
  - name: iii-observability
    config:
      sampling: {default: 0.5, parent_based: false, rules: [{operation: "orders::*", rate: 0}], rate_limit: {max_traces_per_second: 10}}
      alerts:
        - {name: errors, metric: invocations.error, threshold: 0, operator: ">", action: {type: log}}
        - {name: pager, metric: latency.p99_ms, threshold: 500, operator: ">=", action: {type: webhook, url: "https://hooks.example/p"}}
        - {name: call, metric: workers.connected, threshold: 1, operator: "<", action: {type: function, path: ops::page}}
      live_spans: true
      metrics_exporter: otlp
      metrics_retention_seconds: 600
      logs_exporter: both
      logs_batch_size: 50
      logs_flush_interval_ms: 1000
      logs_retention_seconds: 60
`);
    expect(warnings).toEqual([
      'iii-observability: key "live_spans" (pending spans visible in the memory store) accepted; spans are stored when they end, never while pending',
    ]);
  });

  it('does not warn for the implemented adapters', () => {
    expect(load('workers:\n  - name: iii-stream\n    config:\n      adapter: {name: redis}\n').warnings).toEqual([]);
    expect(
      load(
        'workers:\n  - name: iii-stream\n    config:\n      adapter: {name: bridge, config: {bridge_url: "ws://other:49134", timeout_ms: 5000}}\n',
      ).warnings,
    ).toEqual([]);
  });

  it('lists only keys the module schemas accept', () => {
    for (const rule of NOT_IMPLEMENTED_KEYS) {
      const schema = workerSpec(rule.worker).schema;
      if (rule.key === '*') continue;
      expect(schema).not.toBeNull();
      expect(Object.keys(schema!)).toContain(rule.key);
    }
    expect(NOT_IMPLEMENTED_KEYS.filter((k) => k.key !== '*').length).toBeGreaterThan(0);
  });
});

describe('the shipped config files', () => {
  it('config/default.yaml loads and equals the built-in defaults', () => {
    const file = loadConfig({ path: path.join(repoRoot, 'config/default.yaml'), env: {} });
    const builtIn = loadConfig({ env: {} });
    expect(file.warnings).toEqual([]);
    const enabled = (c: LoadedConfig) =>
      Object.entries(c.config.modules)
        .filter(([, m]) => m.enabled)
        .map(([id]) => id)
        .sort();
    expect(enabled(file)).toEqual(enabled(builtIn));
    const { source: _source, nodeId: _a, modules: _m, ...rest } = file.config;
    const { nodeId: _b, modules: _n, ...builtInRest } = builtIn.config;
    expect(rest).toEqual(builtInRest);
    expect(file.config.modules['http'].config['port']).toBe(3111);
    expect(file.config.modules['stream'].config['port']).toBe(3112);
  });

  it('config/cluster.yaml (behind a balancer: one client address) turns max_connections_per_address off on the three ports', () => {
    const { config } = loadConfig({ path: path.join(repoRoot, 'config/cluster.yaml'), env: {} });
    expect(config.limits.maxConnectionsPerAddress).toBe(0);
    expect(config.modules['http'].config['max_connections_per_address']).toBe(0);
    expect(config.modules['stream'].config['max_connections_per_address']).toBe(0);
  });

  it('config/cluster.yaml loads with Redis adapters and cluster mode on', () => {
    const { config, warnings } = loadConfig({ path: path.join(repoRoot, 'config/cluster.yaml'), env: {} });
    expect(warnings).toEqual([]);
    expect(config.cluster).toEqual({ keyPrefix: 'iii:', bus: 'redis', redisUrl: 'redis://127.0.0.1:6379' });
    for (const id of ['stream', 'state', 'pubsub', 'queue', 'cron']) {
      // No URL of its own: the module uses the cluster's Redis (URL or sentinels).
      expect(config.modules[id]!.config['adapter']).toEqual({ name: 'redis' });
    }
    const moved = loadConfig({
      path: path.join(repoRoot, 'config/cluster.yaml'),
      env: { III_REDIS_URL: 'redis://r:6380' },
    });
    expect(moved.config.cluster.redisUrl).toBe('redis://r:6380');
    const adapter = moved.config.modules['state']!.config['adapter'] as { config?: Record<string, unknown> };
    expect(redisTarget('iii-state', adapter.config, moved.config.cluster)).toMatchObject({ url: 'redis://r:6380' });
  });
});
