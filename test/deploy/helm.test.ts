import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { loadConfig } from '../../src/config/load';
import { freePort } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * The Helm chart, checked with a real helm: `helm lint --strict` and `helm template` for each
 * values file in helm/values/, then assertions on the rendered objects. Nothing talks to a
 * Kubernetes cluster; one test runs the engine process the way the pod would (the manifest's
 * args and env, a real Redis) and asks it the probes' questions.
 */

const ROOT = path.resolve(__dirname, '../..');
const CHART = path.join(ROOT, 'helm/iii-cluster');
const VALUES_DIR = path.join(ROOT, 'helm/values');
const VALUES_FILES = ['default.yaml', 'production.yaml', 'demo.yaml'];
const INSTALL_HINT = 'helm is not installed. Build the pinned version with `bash scripts/install-helm.sh` ' +
  '(needs Go; writes .cache/bin/helm), or put helm 3 on the PATH, or set HELM_BIN to its path.';

/** HELM_BIN, else scripts/install-helm.sh's output path, else helm on the PATH. */
function findHelm(): string {
  const candidates = [process.env['HELM_BIN'], path.join(ROOT, '.cache/bin/helm'), 'helm'];
  for (const bin of candidates) {
    if (bin !== undefined && bin !== '' && !spawnSync(bin, ['version', '--short']).error) return bin;
  }
  throw new Error(INSTALL_HINT);
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- Kubernetes objects, read-only in assertions
  data?: Record<string, string>;
}

interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

let helm: string;
let tmpDir: string;

function runHelm(args: string[]): HelmRun {
  const result = spawnSync(helm, args, { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: path.join(tmpDir, 'cache'), HELM_CONFIG_HOME: path.join(tmpDir, 'config'), HELM_DATA_HOME: path.join(tmpDir, 'data') } });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template` with the given values files (names in helm/values/) and extra flags. */
function render(valuesFiles: string[], extra: string[] = []): K8sObject[] {
  const args = ['template', 'iii', CHART, '--namespace', 'iii'];
  for (const file of valuesFiles) args.push('-f', path.isAbsolute(file) ? file : path.join(VALUES_DIR, file));
  const run = runHelm([...args, ...extra]);
  if (run.status !== 0) throw new Error(`helm template failed (${run.status}): ${run.stderr}`);
  return yaml.loadAll(run.stdout).filter((doc): doc is K8sObject => doc !== null && typeof doc === 'object');
}

/** A rendering that must fail; returns helm's error output. */
function renderFails(valuesFiles: string[], extra: string[]): string {
  const args = ['template', 'iii', CHART];
  for (const file of valuesFiles) args.push('-f', path.join(VALUES_DIR, file));
  const run = runHelm([...args, ...extra]);
  expect(run.status).not.toBe(0);
  return run.stderr;
}

function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

/** The engine Deployment (the bundled demo Redis has its own). */
function engineDeployment(objects: K8sObject[]): K8sObject {
  return one(objects, 'Deployment', 'iii-iii-cluster');
}

function engineContainer(objects: K8sObject[]) {
  const containers = engineDeployment(objects).spec.template.spec.containers as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

function envOf(objects: K8sObject[], name: string): Record<string, unknown> | undefined {
  const env = engineContainer(objects)['env'] as Array<{ name: string }>;
  return env.find((e) => e.name === name);
}

function portNumber(objects: K8sObject[], name: string): number {
  const ports = engineContainer(objects)['ports'] as Array<{ name: string; containerPort: number }>;
  const port = ports.find((p) => p.name === name);
  if (!port) throw new Error(`no container port named ${name}`);
  return port.containerPort;
}

const rendered: Record<string, K8sObject[]> = {};

beforeAll(() => {
  helm = findHelm();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-helm-'));
  for (const file of VALUES_FILES) rendered[file] = render([file]);
});

afterAll(() => {
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

describe('helm lint --strict', () => {
  test.each(VALUES_FILES)('passes with helm/values/%s', (file) => {
    const run = runHelm(['lint', '--strict', CHART, '-f', path.join(VALUES_DIR, file)]);
    expect(`${run.stdout}${run.stderr}`).toContain('0 chart(s) failed');
    expect(run.status).toBe(0);
  });
});

describe('engine pods', () => {
  test.each(VALUES_FILES)('probe /healthz (liveness) and /readyz (readiness) on the metrics port 9464 (%s)', (file) => {
    const objects = rendered[file]!;
    const container = engineContainer(objects);
    expect(container['livenessProbe'].httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container['readinessProbe'].httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(portNumber(objects, 'metrics')).toBe(9464);
    expect(envOf(objects, 'III_METRICS_PORT')).toEqual({ name: 'III_METRICS_PORT', value: '9464' });
  });

  test('expose the worker, HTTP, stream and metrics ports', () => {
    const objects = rendered['default.yaml']!;
    expect(['ws', 'http', 'stream', 'metrics'].map((name) => portNumber(objects, name))).toEqual([49134, 3111, 3112, 9464]);
  });

  test.each([
    ['default.yaml', 5, 25, 10],
    ['production.yaml', 10, 60, 15],
  ])('%s: preStop sleeps %i s, the drain grace is %i s, terminationGracePeriodSeconds covers both plus %i s', (file, sleepS, drainS, marginS) => {
    const objects = rendered[file]!;
    const pod = engineDeployment(objects).spec.template.spec;
    expect(engineContainer(objects)['lifecycle'].preStop.exec.command).toEqual(['sleep', String(sleepS)]);
    expect(envOf(objects, 'III_DRAIN_GRACE_MS')).toEqual({ name: 'III_DRAIN_GRACE_MS', value: String(drainS * 1000) });
    expect(pod.terminationGracePeriodSeconds).toBe(sleepS + drainS + marginS);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleepS + drainS);
  });

  test('run as non-root with a read-only root filesystem and no capabilities', () => {
    const objects = rendered['production.yaml']!;
    const pod = engineDeployment(objects).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(engineContainer(objects)['securityContext']).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(engineContainer(objects)['volumeMounts']).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
  });

  test('run as the uid the image declares (deploy/Dockerfile USER), so runAsNonRoot can verify it', () => {
    const user = /^USER\s+(\d+)/m.exec(fs.readFileSync(path.join(ROOT, 'deploy/Dockerfile'), 'utf8'));
    expect(user).not.toBeNull();
    expect(engineDeployment(rendered['default.yaml']!).spec.template.spec.securityContext.runAsUser).toBe(Number(user![1]));
  });

  test('take their node id from the pod name and advertise the pod IP', () => {
    const objects = rendered['default.yaml']!;
    expect(envOf(objects, 'III_NODE_ID')).toEqual({ name: 'III_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(envOf(objects, 'III_ADVERTISE_HOST')).toEqual({ name: 'III_ADVERTISE_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  });

  test('spread over zones and hosts', () => {
    const constraints = engineDeployment(rendered['default.yaml']!).spec.template.spec.topologySpreadConstraints as Array<{ topologyKey: string; labelSelector: unknown }>;
    expect(constraints.map((c) => c.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const c of constraints) expect(c.labelSelector).toEqual({ matchLabels: engineDeployment(rendered['default.yaml']!).spec.selector.matchLabels });
  });

  test('start with --config on the mounted ConfigMap', () => {
    const objects = rendered['default.yaml']!;
    expect(engineContainer(objects)['args']).toEqual(['--config', '/etc/iii-cluster/config.yaml']);
    const volume = (engineDeployment(objects).spec.template.spec.volumes as Array<{ name: string; configMap?: { name: string } }>).find((v) => v.name === 'config');
    expect(volume?.configMap?.name).toBe(one(objects, 'ConfigMap').metadata.name);
  });
});

describe('engine config', () => {
  test('the ConfigMap config.yaml is accepted by the engine and runs it in cluster mode on the chart ports', () => {
    const objects = rendered['default.yaml']!;
    const file = path.join(tmpDir, 'config.yaml');
    fs.writeFileSync(file, one(objects, 'ConfigMap').data!['config.yaml']!);
    const env = { III_REDIS_URL: 'redis://redis:6379', III_NODE_ID: 'iii-iii-cluster-7d9f-abcde', III_DRAIN_GRACE_MS: envOf(objects, 'III_DRAIN_GRACE_MS')!['value'] as string };
    const { config, warnings } = loadConfig({ path: file, env });
    expect(warnings).toEqual([]);
    expect(config.cluster.redisUrl).toBe('redis://redis:6379');
    expect(config.listeners[0]!.port).toBe(49134);
    expect(config.modules['http']!.config['port']).toBe(3111);
    expect(config.modules['stream']!.config['port']).toBe(3112);
    expect(config.metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(config.drainGraceMs).toBe(25_000);
  });

  test('the config turns max_connections_per_address off (0) on the three ports: through an ingress every client shares its address', () => {
    const file = path.join(tmpDir, 'config-limits.yaml');
    fs.writeFileSync(file, one(rendered['default.yaml']!, 'ConfigMap').data!['config.yaml']!);
    const { config } = loadConfig({ path: file, env: { III_REDIS_URL: 'redis://redis:6379' } });
    expect(config.limits.maxConnectionsPerAddress).toBe(0);
    expect(config.modules['http']!.config['max_connections_per_address']).toBe(0);
    expect(config.modules['stream']!.config['max_connections_per_address']).toBe(0);
  });

  test('the checksum/config annotation is the SHA-256 of the config and changes with it, not with other values', () => {
    const checksum = (objects: K8sObject[]) => engineDeployment(objects).spec.template.metadata.annotations['checksum/config'] as string;
    const base = rendered['default.yaml']!;
    const configText = one(base, 'ConfigMap').data!['config.yaml']!;
    expect(checksum(base)).toBe(createHash('sha256').update(configText).digest('hex'));

    const changed = path.join(tmpDir, 'changed-config.yaml');
    const chartConfig = (yaml.load(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as { config: string }).config;
    fs.writeFileSync(changed, yaml.dump({ config: chartConfig.replace('invocation_timeout_ms: 30000', 'invocation_timeout_ms: 60000') }));
    expect(checksum(render(['default.yaml', changed]))).not.toBe(checksum(base));
    expect(checksum(render(['default.yaml'], ['--set', 'ports.ws=50000']))).not.toBe(checksum(base));
    expect(checksum(render(['default.yaml'], ['--set', 'logLevel=debug']))).toBe(checksum(base));
  });
});

describe('Services', () => {
  test('the public Service carries the worker, HTTP and stream ports; the headless one carries metrics', () => {
    const objects = rendered['default.yaml']!;
    const selector = engineDeployment(objects).spec.selector.matchLabels;
    const publicService = one(objects, 'Service', 'iii-iii-cluster');
    expect(publicService.spec.selector).toEqual(selector);
    expect((publicService.spec.ports as Array<{ name: string; port: number }>).map((p) => [p.name, p.port])).toEqual([['ws', 49134], ['http', 3111], ['stream', 3112]]);
    const metrics = one(objects, 'Service', 'iii-iii-cluster-metrics');
    expect(metrics.spec.clusterIP).toBe('None');
    expect(metrics.spec.selector).toEqual(selector);
    expect(metrics.spec.ports).toEqual([{ name: 'metrics', port: 9464, targetPort: 'metrics', protocol: 'TCP' }]);
  });
});

describe('optional objects', () => {
  test('default: no HPA, ServiceMonitor or Ingress; a PDB; a fixed replica count', () => {
    const objects = rendered['default.yaml']!;
    expect(find(objects, 'HorizontalPodAutoscaler')).toHaveLength(0);
    expect(find(objects, 'ServiceMonitor')).toHaveLength(0);
    expect(find(objects, 'Ingress')).toHaveLength(0);
    expect(one(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    expect(engineDeployment(objects).spec.replicas).toBe(3);
  });

  test('autoscaling: an HPA on CPU and connected workers per pod, and the Deployment leaves replicas to it', () => {
    const objects = rendered['production.yaml']!;
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: engineDeployment(objects).metadata.name });
    expect(hpa.spec).toMatchObject({ minReplicas: 3, maxReplicas: 12 });
    expect(hpa.spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 65 } } },
      { type: 'Pods', pods: { metric: { name: 'iii_connected_workers' }, target: { type: 'AverageValue', averageValue: '500' } } },
    ]);
    expect(engineDeployment(objects).spec.replicas).toBeUndefined();
  });

  test('a PDB with minAvailable when set, none when disabled', () => {
    expect(one(rendered['production.yaml']!, 'PodDisruptionBudget').spec).toEqual({
      minAvailable: 2,
      selector: { matchLabels: engineDeployment(rendered['production.yaml']!).spec.selector.matchLabels },
    });
    expect(find(rendered['demo.yaml']!, 'PodDisruptionBudget')).toHaveLength(0);
  });

  test('a ServiceMonitor that selects only the metrics Service, when enabled', () => {
    const objects = rendered['production.yaml']!;
    const monitor = one(objects, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels?.['release']).toBe('kube-prometheus-stack');
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }]);
    const matchLabels = monitor.spec.selector.matchLabels as Record<string, string>;
    const selected = find(objects, 'Service').filter((s) => Object.entries(matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v));
    expect(selected.map((s) => s.metadata.name)).toEqual(['iii-iii-cluster-metrics']);
  });

  test('an Ingress with WebSocket-friendly nginx timeouts and one host per public port', () => {
    const ingress = one(rendered['production.yaml']!, 'Ingress');
    expect(ingress.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
    });
    expect(ingress.spec.ingressClassName).toBe('nginx');
    const backends = (ingress.spec.rules as Array<{ host: string; http: { paths: Array<{ backend: { service: { name: string; port: { name: string } } } }> } }>)
      .map((r) => [r.host, r.http.paths[0]!.backend.service.name, r.http.paths[0]!.backend.service.port.name]);
    expect(backends).toEqual([
      ['workers.iii.example.com', 'iii-iii-cluster', 'ws'],
      ['api.iii.example.com', 'iii-iii-cluster', 'http'],
      ['streams.iii.example.com', 'iii-iii-cluster', 'stream'],
    ]);
  });
});

describe('Redis', () => {
  test('redis.url is passed as III_REDIS_URL', () => {
    expect(envOf(rendered['default.yaml']!, 'III_REDIS_URL')).toEqual({ name: 'III_REDIS_URL', value: 'redis://redis.data.svc.cluster.local:6379' });
  });

  test('redis.existingSecret is referenced, never copied into the manifests', () => {
    const objects = rendered['production.yaml']!;
    expect(envOf(objects, 'III_REDIS_URL')).toEqual({ name: 'III_REDIS_URL', valueFrom: { secretKeyRef: { name: 'iii-redis', key: 'url' } } });
    expect(envOf(objects, 'III_REDIS_KEY_PREFIX')).toEqual({ name: 'III_REDIS_KEY_PREFIX', value: 'iii-prod:' });
    expect(find(objects, 'Secret')).toHaveLength(0);
  });

  test('redis.passwordSecret and redis.tlsCaSecret are referenced: III_REDIS_PASSWORD from the Secret, the CA mounted as III_REDIS_TLS_CA_FILE', () => {
    const objects = render(['default.yaml'], ['--set', 'redis.url=rediss://redis:6380', '--set', 'redis.passwordSecret=redis-auth', '--set', 'redis.tlsCaSecret=redis-ca']);
    expect(envOf(objects, 'III_REDIS_PASSWORD')).toEqual({ name: 'III_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } });
    expect(envOf(objects, 'III_REDIS_TLS_CA_FILE')).toEqual({ name: 'III_REDIS_TLS_CA_FILE', value: '/etc/iii-redis-ca/ca.crt' });
    const pod = one(objects, 'Deployment', 'iii-iii-cluster').spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'redis-ca', secret: { secretName: 'redis-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'redis-ca', mountPath: '/etc/iii-redis-ca', readOnly: true });
    expect(envOf(rendered['default.yaml']!, 'III_REDIS_PASSWORD')).toBeUndefined();
    // The chart creates no Secret for Redis (only the generated worker token's).
    expect(find(objects, 'Secret').map((o) => o.metadata.name)).toEqual(['iii-iii-cluster-worker-token']);
  });

  test('the bundled single-instance Redis exists only in the demo, labelled non-production', () => {
    for (const file of ['default.yaml', 'production.yaml']) {
      expect(rendered[file]!.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'redis-demo')).toHaveLength(0);
    }
    const objects = rendered['demo.yaml']!;
    const redis = one(objects, 'Deployment', 'iii-iii-cluster-redis');
    expect(redis.spec.replicas).toBe(1);
    expect(redis.metadata.annotations?.['iii-cluster/non-production']).toMatch(/demos/);
    expect(one(objects, 'Service', 'iii-iii-cluster-redis').spec.ports[0].port).toBe(6379);
    expect(envOf(objects, 'III_REDIS_URL')).toEqual({ name: 'III_REDIS_URL', value: 'redis://iii-iii-cluster-redis:6379' });
    // The engine Services must not send traffic to the Redis pod.
    expect(one(objects, 'Service', 'iii-iii-cluster').spec.selector['app.kubernetes.io/component']).toBe('engine');
  });

  test('rendering without a Redis, or with two, fails and names the settings', () => {
    expect(renderFails([], [])).toMatch(/no Redis: set redis\.url .*redis\.existingSecret .*redis\.bundled\.enabled/);
    expect(renderFails(['default.yaml'], ['--set', 'redis.existingSecret=s'])).toMatch(/set only one of redis\.url, redis\.existingSecret/);
  });
});

describe('worker token (III_WORKER_TOKEN)', () => {
  const decode = (secret: K8sObject, key: string) => Buffer.from(secret.data![key]!, 'base64').toString('utf8');

  test.each(['default.yaml', 'demo.yaml'])('%s: a generated Secret holds a random 48-character token, passed to the pods by reference', (file) => {
    const objects = rendered[file]!;
    const secret = one(objects, 'Secret', 'iii-iii-cluster-worker-token');
    expect(decode(secret, 'token')).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(envOf(objects, 'III_WORKER_TOKEN')).toEqual({
      name: 'III_WORKER_TOKEN',
      valueFrom: { secretKeyRef: { name: 'iii-iii-cluster-worker-token', key: 'token' } },
    });
  });

  test('the token appears only in its Secret: not in the Deployment, ConfigMap or any other object, plain or base64', () => {
    const objects = rendered['default.yaml']!;
    const secret = one(objects, 'Secret', 'iii-iii-cluster-worker-token');
    const token = decode(secret, 'token');
    for (const object of objects.filter((o) => o !== secret)) {
      const text = JSON.stringify(object);
      expect([object.kind, text.includes(token), text.includes(secret.data!['token']!)]).toEqual([object.kind, false, false]);
    }
  });

  test('every helm template run draws a new token (only an installed release keeps it, through lookup)', () => {
    const token = (objects: K8sObject[]) => one(objects, 'Secret', 'iii-iii-cluster-worker-token').data!['token'];
    expect(token(render(['default.yaml']))).not.toBe(token(rendered['default.yaml']!));
  });

  test('production: workerAuth.existingSecret is referenced, and the chart creates no Secret', () => {
    const objects = rendered['production.yaml']!;
    expect(envOf(objects, 'III_WORKER_TOKEN')).toEqual({ name: 'III_WORKER_TOKEN', valueFrom: { secretKeyRef: { name: 'iii-worker-token', key: 'token' } } });
    expect(find(objects, 'Secret')).toHaveLength(0);
  });

  test('a custom secretKey is used for both the generated Secret and the reference', () => {
    const objects = render(['default.yaml'], ['--set', 'workerAuth.secretKey=worker-token']);
    expect(Object.keys(one(objects, 'Secret').data!)).toEqual(['worker-token']);
    expect(envOf(objects, 'III_WORKER_TOKEN')).toMatchObject({ valueFrom: { secretKeyRef: { key: 'worker-token' } } });
  });

  test('workerAuth.enabled=false: no Secret and no III_WORKER_TOKEN (protected mode then admits only loopback workers)', () => {
    const objects = render(['default.yaml'], ['--set', 'workerAuth.enabled=false']);
    expect(find(objects, 'Secret')).toHaveLength(0);
    expect(envOf(objects, 'III_WORKER_TOKEN')).toBeUndefined();
  });

  test('the schema rejects an empty secretKey and unknown workerAuth keys', () => {
    expect(renderFails(['default.yaml'], ['--set', 'workerAuth.secretKey='])).toMatch(/workerAuth/);
    expect(renderFails(['default.yaml'], ['--set', 'workerAuth.token=abc'])).toMatch(/workerAuth/);
  });
});

describe('values.schema.json', () => {
  test('rejects replicaCount "three"', () => {
    const stderr = renderFails(['default.yaml'], ['--set-string', 'replicaCount=three']);
    expect(stderr).toMatch(/schema/);
    expect(stderr).toMatch(/replicaCount/);
  });

  test('rejects a negative drain grace', () => {
    const stderr = renderFails(['default.yaml'], ['--set', 'drainGraceSeconds=-1']);
    expect(stderr).toMatch(/schema/);
    expect(stderr).toMatch(/drainGraceSeconds/);
  });

  test('rejects an unknown top-level key (a typo is an error, not a silent default)', () => {
    const stderr = renderFails(['default.yaml'], ['--set', 'replicas=3']);
    expect(stderr).toMatch(/schema/);
    expect(stderr).toMatch(/replicas/);
  });

  test('rejects an Ingress path to a port the public Service does not have', () => {
    expect(renderFails(['production.yaml'], ['--set', 'ingress.hosts[0].paths[0].port=metrics'])).toMatch(/schema/);
  });
});

describe('the rendered pod, run as a process', () => {
  let redis: TestRedis | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  test('answers its liveness and readiness probes, then stops cleanly on SIGTERM within the drain grace', async () => {
    const built = path.join(ROOT, 'dist/src/cli.js');
    if (!fs.existsSync(built)) throw new Error(`${built} is missing: run \`npx tsc -p tsconfig.build.json\` first (npm test does it)`);
    redis = await startRedis();
    const [ws, http, stream, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const objects = render(['default.yaml'], [
      '--set', `redis.url=${redis.url}`,
      '--set', `ports.ws=${ws},ports.http=${http},ports.stream=${stream},ports.metrics=${metrics}`,
      '--set', 'redis.keyPrefix=helm-test:',
    ]);
    const container = engineContainer(objects);
    const pod = engineDeployment(objects).spec.template.spec;

    // What the kubelet does: mount the ConfigMap, resolve the env, start ENTRYPOINT + args.
    const mountDir = fs.mkdtempSync(path.join(tmpDir, 'mount-'));
    const mountPath = (container['volumeMounts'] as Array<{ name: string; mountPath: string }>).find((m) => m.name === 'config')!.mountPath;
    fs.writeFileSync(path.join(mountDir, 'config.yaml'), one(objects, 'ConfigMap').data!['config.yaml']!);
    const args = (container['args'] as string[]).map((arg) => arg.replace(mountPath, mountDir));
    const fieldValues: Record<string, string> = { 'metadata.name': 'iii-iii-cluster-5d8c7-x2x9q', 'status.podIP': '127.0.0.1' };
    const secretValue = (ref: { name: string; key: string }) => Buffer.from(one(objects, 'Secret', ref.name).data![ref.key]!, 'base64').toString('utf8');
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], LOG_LEVEL: 'warn' };
    type EnvEntry = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } };
    for (const entry of container['env'] as EnvEntry[]) {
      const from = entry.valueFrom;
      env[entry.name] = entry.value ?? (from?.secretKeyRef ? secretValue(from.secretKeyRef) : fieldValues[from!.fieldRef!.fieldPath]);
    }
    expect(env['III_WORKER_TOKEN']).toMatch(/^[A-Za-z0-9]{48}$/);
    env['LOG_LEVEL'] = 'warn';
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/iii-cluster.js'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; atMs: number }>((resolve) => child.once('exit', (code) => resolve({ code, atMs: Date.now() })));

    try {
      const probeUrl = (probe: { httpGet: { path: string; port: string } }) => `http://127.0.0.1:${portNumber(objects, probe.httpGet.port)}${probe.httpGet.path}`;
      const deadline = Date.now() + 15_000;
      let readiness = 0;
      while (readiness !== 200) {
        if (child.exitCode !== null) throw new Error(`the engine exited with ${child.exitCode}: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`readiness probe not 200 within 15 s: ${stderr}`);
        readiness = await fetch(probeUrl(container['readinessProbe'])).then((r) => r.status, () => 0);
        if (readiness !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect((await fetch(probeUrl(container['livenessProbe']))).status).toBe(200);
      expect(await fetch(`http://127.0.0.1:${metrics}/metrics`).then((r) => r.text())).toMatch(/iii_connected_workers/);

      const signalledAtMs = Date.now();
      child.kill('SIGTERM');
      const { code, atMs } = await exited;
      expect(code).toBe(0);
      // The kubelet SIGKILLs at terminationGracePeriodSeconds (counted from the preStop start).
      expect(atMs - signalledAtMs).toBeLessThan((pod.terminationGracePeriodSeconds - Number(container['lifecycle'].preStop.exec.command[1])) * 1000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
});
