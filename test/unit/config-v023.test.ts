import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig, type LoadedConfig } from '../../src/config/load';
import { editDistance, nearestBuiltin } from '../../src/config/external-workers';
import { anyFilterMatches } from '../../src/engine/access/function-filter';

/**
 * Config files written for iii v0.23, and by `iii worker add`, load: the v0.23 keys are checked
 * for form and each warns once that what it configures is not built; entries for external
 * workers start nothing and warn once each; a misspelt built-in still stops the boot.
 */

let dir: string;
let count = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-config-v023-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(yaml: string): string {
  count += 1;
  const file = path.join(dir, `config-${count}.yaml`);
  fs.writeFileSync(file, yaml);
  return file;
}

function load(yaml: string, env: NodeJS.ProcessEnv = {}): LoadedConfig & { file: string } {
  const file = write(yaml);
  return { ...loadConfig({ path: file, env }), file };
}

function refusal(yaml: string, env: NodeJS.ProcessEnv = {}): { message: string; file: string } {
  const file = write(yaml);
  try {
    loadConfig({ path: file, env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { message: (err as ConfigError).message, file };
  }
  throw new Error('the config loaded; expected a ConfigError');
}

describe('registration_namespace_grace_ms (top level) and III_NAMESPACE_GRACE_MS', () => {
  it('loads from the file, without a warning: namespaces are built', () => {
    const { config, warnings } = load('registration_namespace_grace_ms: 1200\nworkers: []\n');
    expect(warnings).toEqual([]);
    expect(config.namespaceGraceMs).toBe(1200);
  });

  it('takes a ${VAR:default} placeholder as the integer it expands to', () => {
    expect(load('registration_namespace_grace_ms: ${GRACE:2500}\n').config.namespaceGraceMs).toBe(2500);
  });

  it('defaults to 5000; the environment wins over the file', () => {
    expect(loadConfig({ env: {} }).config.namespaceGraceMs).toBe(5000);
    expect(loadConfig({ env: { III_NAMESPACE_GRACE_MS: '100' } }).config.namespaceGraceMs).toBe(100);
    expect(
      load('registration_namespace_grace_ms: 0\n', { III_NAMESPACE_GRACE_MS: '100' }).config.namespaceGraceMs,
    ).toBe(100);
  });

  it('refuses a value that is not an integer >= 0, naming the key or the variable', () => {
    const { message, file } = refusal('registration_namespace_grace_ms: soon\n');
    expect(message).toBe(
      `${file}: registration_namespace_grace_ms: expected an integer >= 0 (milliseconds), got "soon"`,
    );
    expect(refusal('registration_namespace_grace_ms: -1\n').message).toContain(
      'registration_namespace_grace_ms: expected an integer >= 0',
    );
    expect(refusal('registration_namespace_grace_ms: {ms: 5}\n').message).toContain(
      'registration_namespace_grace_ms: expected an integer >= 0 (milliseconds), got a mapping',
    );
    expect(refusal('workers: []\n', { III_NAMESPACE_GRACE_MS: '5s' }).message).toBe(
      'environment variable III_NAMESPACE_GRACE_MS: expected an integer >= 0 (milliseconds), got "5s"',
    );
  });
});

describe('iii-observability trace_storage', () => {
  const traceStorage = `
workers:
  - name: iii-observability
    config:
      exporter: memory
      trace_storage:
        enabled: true
        directory: ./data/traces
        max_disk_bytes: 1073741824
        retention_seconds: 86400
        memory_max_bytes: 67108864
        flush_interval_ms: 1000
`;

  it('loads, unknown v0.23 keys of the block included, with one warning saying traces stay in memory', () => {
    const { config, warnings } = load(traceStorage);
    expect(warnings).toEqual([
      'iii-observability: key "trace_storage" (iii v0.23 on-disk traces) accepted; trace storage on disk is not implemented, so traces stay in memory only (memory_max_spans) and are gone after a restart',
    ]);
    expect(config.modules['observability'].config['exporter']).toBe('memory');
  });

  it('refuses a key of the wrong type, naming it', () => {
    const at = 'workers[0] (iii-observability).config.trace_storage';
    expect(refusal(traceStorage.replace('enabled: true', 'enabled: sometimes')).message).toContain(
      `${at}.enabled: expected true or false, got "sometimes"`,
    );
    expect(refusal(traceStorage.replace('max_disk_bytes: 1073741824', 'max_disk_bytes: 1GB')).message).toContain(
      `${at}.max_disk_bytes: expected an integer >= 0 (bytes), got "1GB"`,
    );
    expect(refusal(traceStorage.replace('retention_seconds: 86400', 'retention_seconds: -5')).message).toContain(
      `${at}.retention_seconds: expected an integer >= 0 (seconds), got -5`,
    );
    expect(refusal(traceStorage.replace('directory: ./data/traces', 'directory: ""')).message).toContain(
      `${at}.directory: expected a non-empty string, got ""`,
    );
    expect(refusal('workers:\n  - name: iii-observability\n    config: {trace_storage: [1]}\n').message).toContain(
      `${at}: expected a mapping {enabled?,`,
    );
  });
});

describe('rbac expose_functions rules {match, namespace}', () => {
  const rbac = (rules: string) => `
workers:
  - name: iii-worker-manager
    config:
      port: 49150
      rbac:
        auth_function_id: auth::check
        expose_functions:
${rules}
`;

  it('loads without a warning; a rule matches the functions of its namespace, one without a namespace any', () => {
    const { config, warnings } = load(
      rbac(
        '          - match("public::*")\n          - {match: "api::*", namespace: default}\n          - {match: "*", namespace: internal}\n          - {match: "billing::*"}',
      ),
    );
    expect(warnings).toEqual([]);
    const filters = config.listeners[0].rbac!.expose_functions;
    expect(filters).toEqual([
      'match("public::*")',
      { match: 'api::*', namespace: 'default' },
      { match: '*', namespace: 'internal' },
      { match: 'billing::*' },
    ]);
    expect(anyFilterMatches(filters, { id: 'api::users' })).toBe(true);
    expect(anyFilterMatches(filters, { id: 'api::users', namespace: 'shop' })).toBe(false);
    expect(anyFilterMatches(filters, { id: 'anything', namespace: 'internal' })).toBe(true);
    expect(anyFilterMatches(filters, { id: 'billing::charge', namespace: 'shop' })).toBe(true);
    expect(anyFilterMatches(filters, { id: 'other::x' })).toBe(false);
  });

  it('refuses a rule field of the wrong type, naming it', () => {
    const at = 'workers[0] (iii-worker-manager).config.rbac.expose_functions[0]';
    expect(refusal(rbac('          - {match: "api::*", namespace: 5}')).message).toContain(
      `${at}.namespace: expected a non-empty string, got 5`,
    );
    expect(refusal(rbac('          - {match: [api], namespace: default}')).message).toContain(
      `${at}.match: expected a non-empty string, got a list`,
    );
    expect(refusal(rbac('          - {namespace: default}')).message).toContain(
      `${at}: expected a function filter: match("pattern"), {metadata: {...}} or {match: "pattern", namespace: "ns"}, got a mapping`,
    );
    expect(refusal(rbac('          - {match: "api::*", namespaces: [a]}')).message).toContain(
      `${at}.namespaces: unknown key (expected one of: match, namespace)`,
    );
  });
});

describe('worker entries for external workers (image:, registry names)', () => {
  const tail =
    'external workers are not started by iii-cluster; run it yourself and point it at this engine (ws://localhost:49134)';

  it('loads an image entry and registry entries, starting nothing, one warning line each naming the entry', () => {
    const { config, warnings, file } = load(`
workers:
  - name: iii-http
  - name: my-worker
    image: ghcr.io/org/w:1.0
    config: {anything: [1, 2]}
  - name: iii-hq/queue
  - name: todo-worker
    config:
      greeting: hi
    version: 1.2.0
  - name: iii-sandbox
`);
    expect(warnings).toEqual([
      `${file}: workers[1]: worker "my-worker" (image ghcr.io/org/w:1.0): ${tail}`,
      `${file}: workers[2]: worker "iii-hq/queue" (registry worker): ${tail}`,
      `${file}: workers[3]: worker "todo-worker" (registry worker): ${tail}`,
      `${file}: workers[4]: worker "iii-sandbox" (iii-worker daemon): ${tail}`,
    ]);
    const enabled = Object.entries(config.modules)
      .filter(([, m]) => m.enabled)
      .map(([id]) => id)
      .sort();
    expect(enabled).toEqual(['configuration', 'http', 'observability', 'telemetry']);
  });

  it('takes an image on an iii- name that is not a built-in as an external worker', () => {
    const { warnings } = load('workers:\n  - name: iii-custom\n    image: registry.local/iii-custom:2\n');
    expect(warnings).toEqual([
      expect.stringContaining(
        'worker "iii-custom" (image registry.local/iii-custom:2): external workers are not started',
      ),
    ]);
  });

  it('names the URL of the first worker listener in the warning', () => {
    const { warnings } = load(
      'workers:\n  - name: iii-worker-manager\n    config: {host: 10.1.2.3, port: 50000}\n  - name: todo-worker\n',
    );
    expect(warnings[0]).toContain('point it at this engine (ws://10.1.2.3:50000)');
    expect(load('workers:\n  - name: todo-worker\n', { III_WS_PORT: '40000' }).warnings[0]).toContain(
      '(ws://localhost:40000)',
    );
  });

  it('adds a hint when a bare registry name is one edit from a built-in', () => {
    const { warnings } = load('workers:\n  - name: crons\n');
    expect(warnings[0]).toMatch(
      /\(registry worker\): external workers .*\(if you meant the built-in "cron", correct the name\)$/,
    );
  });

  it('refuses an image that is not a non-empty string, naming the entry', () => {
    expect(refusal('workers:\n  - name: my-worker\n    image: [a]\n').message).toContain(
      'workers[0] (my-worker).image: expected an image reference (a non-empty string), got a list',
    );
  });

  it('keeps refusing an image on a built-in worker', () => {
    expect(refusal('workers:\n  - name: iii-state\n    image: ghcr.io/x/state:1\n').message).toContain(
      'workers[0] (iii-state).image: "iii-state" is a built-in worker and cannot take an image',
    );
  });
});

describe('a misspelt built-in (iii- name, no image, no /)', () => {
  it('is refused with the nearest built-in name', () => {
    const { message, file } = refusal('workers:\n  - name: iii-stat\n');
    expect(message).toMatch(
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: workers\\[0\\]: unknown worker "iii-stat": did you mean "iii-state"\\? \\(iii- names are iii's own workers; the built-ins are `,
      ),
    );
    expect(refusal('workers:\n  - name: iii-htpp\n').message).toContain(
      'unknown worker "iii-htpp": did you mean "iii-http"?',
    );
    expect(refusal('workers:\n  - name: III-Http\n').message).toContain(
      'unknown worker "III-Http": did you mean "iii-http"?',
    );
    expect(refusal('modules:\n  - name: iii-worker-manger\n').message).toContain(
      'modules[0]: unknown worker "iii-worker-manger": did you mean "iii-worker-manager"?',
    );
  });

  it('is refused without a suggestion when no built-in is near, listing the built-ins', () => {
    const { message } = refusal('workers:\n  - name: iii-something-else\n');
    expect(message).toContain(
      'unknown worker "iii-something-else" (iii- names are iii\'s own workers; the built-ins are iii-worker-manager, configuration,',
    );
    expect(message).not.toContain('did you mean');
  });
});

describe('edit distance', () => {
  it('counts a swap of neighbours as one edit and stops at the limit', () => {
    expect(editDistance('iii-htpp', 'iii-http', 4)).toBe(1);
    expect(editDistance('iii-stat', 'iii-state', 4)).toBe(1);
    expect(editDistance('abc', 'abc', 4)).toBe(0);
    expect(editDistance('x'.repeat(2000), 'iii-http', 4)).toBe(4);
    expect(nearestBuiltin('iii-sream', 3)).toBe('iii-stream');
    expect(nearestBuiltin('iii-zzzzzzzz', 3)).toBeUndefined();
  });
});
