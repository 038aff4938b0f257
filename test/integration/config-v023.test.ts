import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startNodeProcess, type NodeProcess } from '../support/node-process';

/**
 * A real engine process started on a config.yaml written for iii v0.23 and by `iii worker add`
 * (namespace grace, trace_storage, namespaced RBAC rules, image and registry entries) boots to
 * ready and logs one warning for each; a misspelt built-in still stops it with exit code 2.
 */

const CONFIG = `
registration_namespace_grace_ms: 5000
workers:
  - name: iii-worker-manager
    config:
      rbac:
        auth_function_id: auth::check
        expose_functions:
          - {match: "api::*", namespace: default}
          - {match: "*", namespace: internal}
  - name: iii-observability
    config:
      trace_storage:
        enabled: true
        directory: ./data/traces
        max_disk_bytes: 1073741824
        retention_seconds: 86400
        memory_max_bytes: 67108864
  - name: iii-state
  - name: my-worker
    image: ghcr.io/org/w:1.0
  - name: iii-hq/queue
  - name: todo-worker
    config:
      greeting: hi
`;

let dir: string;
let node: NodeProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-v023-'));
});

afterEach(async () => {
  await node?.kill('SIGKILL');
  node = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** The `msg` of every warn-level JSON log line. */
function warnings(output: string): string[] {
  const messages: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const record = JSON.parse(line) as { level?: number | string; msg?: string };
    if ((record.level === 40 || record.level === 'warn') && typeof record.msg === 'string') messages.push(record.msg);
  }
  return messages;
}

test('a v0.23-shaped config.yaml boots to ready and logs one warning per v0.23 key not built and per external worker', async () => {
  await writeFile(join(dir, 'config.yaml'), CONFIG);
  node = await startNodeProcess({ nodeId: 'v023', cwd: dir, args: ['--config', 'config.yaml'] });
  const logged = warnings(node.output());
  const port = new URL(node.url).port;
  const tail = `external workers are not started by iii-cluster; run it yourself and point it at this engine (ws://localhost:${port})`;
  expect(logged).toEqual(
    expect.arrayContaining([
      expect.stringMatching(
        /^iii-observability: key "trace_storage" \(iii v0\.23 on-disk traces\) accepted; trace storage on disk is not implemented/,
      ),
      `config.yaml: workers[3]: worker "my-worker" (image ghcr.io/org/w:1.0): ${tail}`,
      `config.yaml: workers[4]: worker "iii-hq/queue" (registry worker): ${tail}`,
      `config.yaml: workers[5]: worker "todo-worker" (registry worker): ${tail}`,
    ]),
  );
  expect(logged.filter((m) => m.includes('worker "todo-worker"'))).toHaveLength(1);
  expect(logged.filter((m) => m.includes('trace_storage'))).toHaveLength(1);
  // Namespaces are built: their keys load without a word.
  expect(logged.filter((m) => m.includes('namespace'))).toEqual([]);
});

test('a misspelt built-in stops the boot with exit code 2 and the nearest name', async () => {
  await writeFile(join(dir, 'config.yaml'), 'workers:\n  - name: iii-stat\n');
  const run = spawnSync(process.execPath, [resolve(__dirname, '../../bin/iii-cluster.js'), '--config', 'config.yaml'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 15_000,
  });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('config.yaml: workers[0]: unknown worker "iii-stat": did you mean "iii-state"?');
});
