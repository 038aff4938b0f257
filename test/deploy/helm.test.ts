import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import yaml from 'js-yaml';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load';
import { freePort } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';
import { makeCertificates } from '../support/tls';

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
const INSTALL_HINT =
  'helm is not installed. Build the pinned version with `bash scripts/install-helm.sh` ' +
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
  const result = spawnSync(helm, args, {
    encoding: 'utf8',
    env: {
      ...process.env,
      HELM_CACHE_HOME: path.join(tmpDir, 'cache'),
      HELM_CONFIG_HOME: path.join(tmpDir, 'config'),
      HELM_DATA_HOME: path.join(tmpDir, 'data'),
    },
  });
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
  return found[0];
}

/** The engine Deployment (the bundled demo Redis has its own). */
function engineDeployment(objects: K8sObject[]): K8sObject {
  return one(objects, 'Deployment', 'iii-iii-cluster');
}

function engineContainer(objects: K8sObject[]) {
  const containers = engineDeployment(objects).spec.template.spec.containers as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(containers).toHaveLength(1);
  return containers[0];
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
    const objects = rendered[file];
    const container = engineContainer(objects);
    expect(container['livenessProbe'].httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container['readinessProbe'].httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(portNumber(objects, 'metrics')).toBe(9464);
    expect(envOf(objects, 'III_METRICS_PORT')).toEqual({ name: 'III_METRICS_PORT', value: '9464' });
  });

  test('expose the worker, HTTP, stream and metrics ports', () => {
    const objects = rendered['default.yaml'];
    expect(['ws', 'http', 'stream', 'metrics'].map((name) => portNumber(objects, name))).toEqual([
      49134, 3111, 3112, 9464,
    ]);
  });

  test.each([
    ['default.yaml', 5, 25, 10],
    ['production.yaml', 10, 60, 15],
  ])(
    '%s: preStop sleeps %i s, the drain grace is %i s, terminationGracePeriodSeconds covers both plus %i s',
    (file, sleepS, drainS, marginS) => {
      const objects = rendered[file];
      const pod = engineDeployment(objects).spec.template.spec;
      expect(engineContainer(objects)['lifecycle'].preStop.exec.command).toEqual(['sleep', String(sleepS)]);
      expect(envOf(objects, 'III_DRAIN_GRACE_MS')).toEqual({
        name: 'III_DRAIN_GRACE_MS',
        value: String(drainS * 1000),
      });
      expect(pod.terminationGracePeriodSeconds).toBe(sleepS + drainS + marginS);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleepS + drainS);
    },
  );

  test('run as non-root with a read-only root filesystem and no capabilities', () => {
    const objects = rendered['production.yaml'];
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
    expect(engineDeployment(rendered['default.yaml']).spec.template.spec.securityContext.runAsUser).toBe(
      Number(user![1]),
    );
  });

  test('take their node id from the pod name and advertise the pod IP', () => {
    const objects = rendered['default.yaml'];
    expect(envOf(objects, 'III_NODE_ID')).toEqual({
      name: 'III_NODE_ID',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    expect(envOf(objects, 'III_ADVERTISE_HOST')).toEqual({
      name: 'III_ADVERTISE_HOST',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
  });

  test('spread over zones and hosts', () => {
    const constraints = engineDeployment(rendered['default.yaml']).spec.template.spec
      .topologySpreadConstraints as Array<{ topologyKey: string; labelSelector: unknown }>;
    expect(constraints.map((c) => c.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const c of constraints)
      expect(c.labelSelector).toEqual({
        matchLabels: engineDeployment(rendered['default.yaml']).spec.selector.matchLabels,
      });
  });

  test('start with --config on the mounted ConfigMap', () => {
    const objects = rendered['default.yaml'];
    expect(engineContainer(objects)['args']).toEqual(['--config', '/etc/iii-cluster/config.yaml']);
    const volume = (
      engineDeployment(objects).spec.template.spec.volumes as Array<{ name: string; configMap?: { name: string } }>
    ).find((v) => v.name === 'config');
    expect(volume?.configMap?.name).toBe(one(objects, 'ConfigMap').metadata.name);
  });
});

describe('engine config', () => {
  test('the ConfigMap config.yaml is accepted by the engine and runs it in cluster mode on the chart ports', () => {
    const objects = rendered['default.yaml'];
    const file = path.join(tmpDir, 'config.yaml');
    fs.writeFileSync(file, one(objects, 'ConfigMap').data!['config.yaml']);
    const env = {
      III_REDIS_URL: 'redis://redis:6379',
      III_NODE_ID: 'iii-iii-cluster-7d9f-abcde',
      III_DRAIN_GRACE_MS: envOf(objects, 'III_DRAIN_GRACE_MS')!['value'] as string,
    };
    const { config, warnings } = loadConfig({ path: file, env });
    expect(warnings).toEqual([]);
    expect(config.cluster.redisUrl).toBe('redis://redis:6379');
    expect(config.listeners[0].port).toBe(49134);
    expect(config.modules['http'].config['port']).toBe(3111);
    expect(config.modules['stream'].config['port']).toBe(3112);
    expect(config.metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(config.drainGraceMs).toBe(25_000);
  });

  test('the config turns max_connections_per_address off (0) on the three ports: through an ingress every client shares its address', () => {
    const file = path.join(tmpDir, 'config-limits.yaml');
    fs.writeFileSync(file, one(rendered['default.yaml'], 'ConfigMap').data!['config.yaml']);
    const { config } = loadConfig({ path: file, env: { III_REDIS_URL: 'redis://redis:6379' } });
    expect(config.limits.maxConnectionsPerAddress).toBe(0);
    expect(config.modules['http'].config['max_connections_per_address']).toBe(0);
    expect(config.modules['stream'].config['max_connections_per_address']).toBe(0);
  });

  test('the checksum/config annotation is the SHA-256 of the config and changes with it, not with other values', () => {
    const checksum = (objects: K8sObject[]) =>
      engineDeployment(objects).spec.template.metadata.annotations['checksum/config'] as string;
    const base = rendered['default.yaml'];
    const configText = one(base, 'ConfigMap').data!['config.yaml'];
    expect(checksum(base)).toBe(createHash('sha256').update(configText).digest('hex'));

    const changed = path.join(tmpDir, 'changed-config.yaml');
    const chartConfig = (yaml.load(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as { config: string })
      .config;
    fs.writeFileSync(
      changed,
      yaml.dump({ config: chartConfig.replace('invocation_timeout_ms: 30000', 'invocation_timeout_ms: 60000') }),
    );
    expect(checksum(render(['default.yaml', changed]))).not.toBe(checksum(base));
    expect(checksum(render(['default.yaml'], ['--set', 'ports.ws=50000']))).not.toBe(checksum(base));
    expect(checksum(render(['default.yaml'], ['--set', 'logLevel=debug']))).toBe(checksum(base));
  });
});

describe('Services', () => {
  test('the public Service carries the worker, HTTP and stream ports; the headless one carries metrics', () => {
    const objects = rendered['default.yaml'];
    const selector = engineDeployment(objects).spec.selector.matchLabels;
    const publicService = one(objects, 'Service', 'iii-iii-cluster');
    expect(publicService.spec.selector).toEqual(selector);
    expect((publicService.spec.ports as Array<{ name: string; port: number }>).map((p) => [p.name, p.port])).toEqual([
      ['ws', 49134],
      ['http', 3111],
      ['stream', 3112],
    ]);
    const metrics = one(objects, 'Service', 'iii-iii-cluster-metrics');
    expect(metrics.spec.clusterIP).toBe('None');
    expect(metrics.spec.selector).toEqual(selector);
    expect(metrics.spec.ports).toEqual([{ name: 'metrics', port: 9464, targetPort: 'metrics', protocol: 'TCP' }]);
  });
});

describe('optional objects', () => {
  test('default: no HPA, ServiceMonitor or Ingress; a PDB; a fixed replica count', () => {
    const objects = rendered['default.yaml'];
    expect(find(objects, 'HorizontalPodAutoscaler')).toHaveLength(0);
    expect(find(objects, 'ServiceMonitor')).toHaveLength(0);
    expect(find(objects, 'Ingress')).toHaveLength(0);
    expect(one(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    expect(engineDeployment(objects).spec.replicas).toBe(3);
  });

  test('autoscaling: an HPA on CPU and connected workers per pod, and the Deployment leaves replicas to it', () => {
    const objects = rendered['production.yaml'];
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: engineDeployment(objects).metadata.name,
    });
    expect(hpa.spec).toMatchObject({ minReplicas: 3, maxReplicas: 12 });
    expect(hpa.spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 65 } } },
      {
        type: 'Pods',
        pods: { metric: { name: 'iii_connected_workers' }, target: { type: 'AverageValue', averageValue: '500' } },
      },
    ]);
    expect(engineDeployment(objects).spec.replicas).toBeUndefined();
  });

  test('a PDB with minAvailable when set, none when disabled', () => {
    expect(one(rendered['production.yaml'], 'PodDisruptionBudget').spec).toEqual({
      minAvailable: 2,
      selector: { matchLabels: engineDeployment(rendered['production.yaml']).spec.selector.matchLabels },
    });
    expect(find(rendered['demo.yaml'], 'PodDisruptionBudget')).toHaveLength(0);
  });

  test('a ServiceMonitor that selects only the metrics Service, when enabled', () => {
    const objects = rendered['production.yaml'];
    const monitor = one(objects, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels?.['release']).toBe('kube-prometheus-stack');
    expect(monitor.spec.endpoints).toEqual([
      { port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' },
    ]);
    const matchLabels = monitor.spec.selector.matchLabels as Record<string, string>;
    const selected = find(objects, 'Service').filter((s) =>
      Object.entries(matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v),
    );
    expect(selected.map((s) => s.metadata.name)).toEqual(['iii-iii-cluster-metrics']);
  });

  test('an Ingress with WebSocket-friendly nginx timeouts and one host per public port', () => {
    const ingress = one(rendered['production.yaml'], 'Ingress');
    expect(ingress.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
    });
    expect(ingress.spec.ingressClassName).toBe('nginx');
    const backends = (
      ingress.spec.rules as Array<{
        host: string;
        http: { paths: Array<{ backend: { service: { name: string; port: { name: string } } } }> };
      }>
    ).map((r) => [r.host, r.http.paths[0].backend.service.name, r.http.paths[0].backend.service.port.name]);
    expect(backends).toEqual([
      ['workers.iii.example.com', 'iii-iii-cluster', 'ws'],
      ['api.iii.example.com', 'iii-iii-cluster', 'http'],
      ['streams.iii.example.com', 'iii-iii-cluster', 'stream'],
    ]);
  });
});

describe('Redis', () => {
  test('redis.url is passed as III_REDIS_URL', () => {
    expect(envOf(rendered['default.yaml'], 'III_REDIS_URL')).toEqual({
      name: 'III_REDIS_URL',
      value: 'redis://redis.data.svc.cluster.local:6379',
    });
  });

  test('redis.existingSecret is referenced, never copied into the manifests', () => {
    const objects = rendered['production.yaml'];
    expect(envOf(objects, 'III_REDIS_URL')).toEqual({
      name: 'III_REDIS_URL',
      valueFrom: { secretKeyRef: { name: 'iii-redis', key: 'url' } },
    });
    expect(envOf(objects, 'III_REDIS_KEY_PREFIX')).toEqual({ name: 'III_REDIS_KEY_PREFIX', value: 'iii-prod:' });
    expect(find(objects, 'Secret')).toHaveLength(0);
  });

  test('redis.passwordSecret and redis.tlsCaSecret are referenced: III_REDIS_PASSWORD from the Secret, the CA mounted as III_REDIS_TLS_CA_FILE', () => {
    const objects = render(
      ['default.yaml'],
      [
        '--set',
        'redis.url=rediss://redis:6380',
        '--set',
        'redis.passwordSecret=redis-auth',
        '--set',
        'redis.tlsCaSecret=redis-ca',
      ],
    );
    expect(envOf(objects, 'III_REDIS_PASSWORD')).toEqual({
      name: 'III_REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } },
    });
    expect(envOf(objects, 'III_REDIS_TLS_CA_FILE')).toEqual({
      name: 'III_REDIS_TLS_CA_FILE',
      value: '/etc/iii-redis-ca/ca.crt',
    });
    const pod = one(objects, 'Deployment', 'iii-iii-cluster').spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'redis-ca',
      secret: { secretName: 'redis-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'redis-ca',
      mountPath: '/etc/iii-redis-ca',
      readOnly: true,
    });
    expect(envOf(rendered['default.yaml'], 'III_REDIS_PASSWORD')).toBeUndefined();
    // The chart creates no Secret for Redis (only the generated worker token's).
    expect(find(objects, 'Secret').map((o) => o.metadata.name)).toEqual(['iii-iii-cluster-worker-token']);
  });

  test('the bundled single-instance Redis exists only in the demo, labelled non-production', () => {
    for (const file of ['default.yaml', 'production.yaml']) {
      expect(
        rendered[file].filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'redis-demo'),
      ).toHaveLength(0);
    }
    const objects = rendered['demo.yaml'];
    const redis = one(objects, 'Deployment', 'iii-iii-cluster-redis');
    expect(redis.spec.replicas).toBe(1);
    expect(redis.metadata.annotations?.['iii-cluster/non-production']).toMatch(/demos/);
    expect(one(objects, 'Service', 'iii-iii-cluster-redis').spec.ports[0].port).toBe(6379);
    expect(envOf(objects, 'III_REDIS_URL')).toEqual({
      name: 'III_REDIS_URL',
      value: 'redis://iii-iii-cluster-redis:6379',
    });
    // The engine Services must not send traffic to the Redis pod.
    expect(one(objects, 'Service', 'iii-iii-cluster').spec.selector['app.kubernetes.io/component']).toBe('engine');
  });

  test('rendering without a Redis, or with two, fails and names the settings', () => {
    expect(renderFails([], [])).toMatch(
      /no Redis: set redis\.url .*redis\.existingSecret .*redis\.sentinel\.hosts .*redis\.cluster\.nodes .*redis\.bundled\.enabled/,
    );
    expect(renderFails(['default.yaml'], ['--set', 'redis.existingSecret=s'])).toMatch(
      /set only one of redis\.url, redis\.existingSecret, redis\.sentinel\.hosts, redis\.cluster\.nodes and redis\.bundled\.enabled \(set here: redis\.url, redis\.existingSecret\)/,
    );
  });

  /** The env entries whose names start with III_REDIS_, by name. */
  const redisEnv = (objects: K8sObject[]) =>
    Object.fromEntries(
      (engineContainer(objects)['env'] as Array<{ name: string; value?: string }>)
        .filter((e) => e.name.startsWith('III_REDIS_'))
        .map((e) => [e.name, e]),
    );

  test('redis.sentinel.*: III_REDIS_SENTINELS, III_REDIS_SENTINEL_NAME, III_REDIS_SENTINEL_PASSWORD from its Secret, III_REDIS_TLS, and no III_REDIS_URL', () => {
    const objects = render(
      [],
      [
        '--set',
        'redis.sentinel.hosts=s0.redis:26379\\,s1.redis:26379\\,s2.redis:26379',
        '--set',
        'redis.sentinel.name=mymaster',
        '--set',
        'redis.sentinel.passwordSecret=sentinel-auth',
        '--set',
        'redis.sentinel.passwordSecretKey=sentinel-password',
        '--set',
        'redis.sentinel.tls=true',
        '--set',
        'redis.passwordSecret=redis-auth',
      ],
    );
    expect(redisEnv(objects)).toEqual({
      III_REDIS_KEY_PREFIX: { name: 'III_REDIS_KEY_PREFIX', value: 'iii:' },
      III_REDIS_SENTINELS: { name: 'III_REDIS_SENTINELS', value: 's0.redis:26379,s1.redis:26379,s2.redis:26379' },
      III_REDIS_SENTINEL_NAME: { name: 'III_REDIS_SENTINEL_NAME', value: 'mymaster' },
      III_REDIS_SENTINEL_PASSWORD: {
        name: 'III_REDIS_SENTINEL_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'sentinel-auth', key: 'sentinel-password' } },
      },
      III_REDIS_TLS: { name: 'III_REDIS_TLS', value: 'true' },
      // The data nodes' password.
      III_REDIS_PASSWORD: {
        name: 'III_REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } },
      },
    });
    // Without sentinel.tls, no III_REDIS_TLS (the engine's default is plain TCP).
    const plain = render([], ['--set', 'redis.sentinel.hosts=s0:26379', '--set', 'redis.sentinel.name=mymaster']);
    expect(Object.keys(redisEnv(plain)).sort()).toEqual([
      'III_REDIS_KEY_PREFIX',
      'III_REDIS_SENTINELS',
      'III_REDIS_SENTINEL_NAME',
    ]);
  });

  test('redis.sentinel.hosts without redis.sentinel.name fails, and so does the name alone', () => {
    expect(renderFails([], ['--set', 'redis.sentinel.hosts=s0:26379'])).toMatch(
      /redis\.sentinel\.hosts needs redis\.sentinel\.name/,
    );
    // A name beside a URL: the URL is used and the name would be ignored, so it is refused too.
    expect(renderFails(['default.yaml'], ['--set', 'redis.sentinel.name=mymaster'])).toMatch(
      /redis\.sentinel\.name needs redis\.sentinel\.hosts/,
    );
  });

  test('redis.cluster.*: III_REDIS_CLUSTER_NODES and III_REDIS_TLS, the password from redis.passwordSecret, the CA from redis.tlsCaSecret, and no III_REDIS_URL', () => {
    const objects = render(
      [],
      [
        '--set',
        'redis.cluster.nodes=rc-0.rc-headless:6379\\,rc-1.rc-headless:6379\\,rc-2.rc-headless:6379',
        '--set',
        'redis.cluster.tls=true',
        '--set',
        'redis.passwordSecret=redis-cluster-auth',
        '--set',
        'redis.passwordSecretKey=redis-password',
        '--set',
        'redis.tlsCaSecret=redis-ca',
      ],
    );
    expect(redisEnv(objects)).toEqual({
      III_REDIS_KEY_PREFIX: { name: 'III_REDIS_KEY_PREFIX', value: 'iii:' },
      III_REDIS_CLUSTER_NODES: {
        name: 'III_REDIS_CLUSTER_NODES',
        value: 'rc-0.rc-headless:6379,rc-1.rc-headless:6379,rc-2.rc-headless:6379',
      },
      III_REDIS_TLS: { name: 'III_REDIS_TLS', value: 'true' },
      III_REDIS_PASSWORD: {
        name: 'III_REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'redis-cluster-auth', key: 'redis-password' } },
      },
      III_REDIS_TLS_CA_FILE: { name: 'III_REDIS_TLS_CA_FILE', value: '/etc/iii-redis-ca/ca.crt' },
    });
    expect(engineDeployment(objects).spec.template.spec.volumes).toContainEqual({
      name: 'redis-ca',
      secret: { secretName: 'redis-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
    // Without cluster.tls, no III_REDIS_TLS.
    const plain = render([], ['--set', 'redis.cluster.nodes=rc-0:6379']);
    expect(Object.keys(redisEnv(plain)).sort()).toEqual(['III_REDIS_CLUSTER_NODES', 'III_REDIS_KEY_PREFIX']);
  });

  test("the engine's config loader accepts the env the chart renders for redis.cluster.nodes (Cluster mode, TLS on)", () => {
    const objects = render(
      [],
      ['--set', 'redis.cluster.nodes=rc-0:6379\\,rc-1:6380', '--set', 'redis.cluster.tls=true'],
    );
    const env = Object.fromEntries(Object.values(redisEnv(objects)).map((e) => [e.name, e.value]));
    const { config } = loadConfig({ path: path.join(ROOT, 'config/cluster.yaml'), env });
    expect(config.cluster.redisClusterNodes).toEqual([
      { host: 'rc-0', port: 6379 },
      { host: 'rc-1', port: 6380 },
    ]);
    expect(config.cluster.redisUrl).toBeUndefined();
    expect(config.cluster.redisTls).toBe(true);
  });

  test('redis.url with redis.cluster.nodes fails and names both; so do sentinels with cluster nodes', () => {
    expect(renderFails(['default.yaml'], ['--set', 'redis.cluster.nodes=rc-0:6379'])).toMatch(
      /set only one of .*\(set here: redis\.url, redis\.cluster\.nodes\)/,
    );
    expect(
      renderFails(
        [],
        [
          '--set',
          'redis.cluster.nodes=rc-0:6379',
          '--set',
          'redis.sentinel.hosts=s0:26379',
          '--set',
          'redis.sentinel.name=mymaster',
        ],
      ),
    ).toMatch(/\(set here: redis\.sentinel\.hosts, redis\.cluster\.nodes\)/);
  });

  test('the schema rejects a malformed redis.cluster.nodes and unknown redis.cluster keys', () => {
    expect(renderFails([], ['--set', 'redis.cluster.nodes=rc-0:6379\\,\\,rc-1:6379'])).toMatch(
      /schema[\s\S]*\/redis\/cluster\/nodes/,
    );
    expect(renderFails([], ['--set', 'redis.cluster.nodes=rc-0:6379', '--set', 'redis.cluster.password=x'])).toMatch(
      /schema[\s\S]*\/redis\/cluster.*'password' not allowed/,
    );
  });
});

describe('worker token (III_WORKER_TOKEN)', () => {
  const decode = (secret: K8sObject, key: string) => Buffer.from(secret.data![key], 'base64').toString('utf8');

  test.each(['default.yaml', 'demo.yaml'])(
    '%s: a generated Secret holds a random 48-character token, passed to the pods by reference',
    (file) => {
      const objects = rendered[file];
      const secret = one(objects, 'Secret', 'iii-iii-cluster-worker-token');
      expect(decode(secret, 'token')).toMatch(/^[A-Za-z0-9]{48}$/);
      expect(envOf(objects, 'III_WORKER_TOKEN')).toEqual({
        name: 'III_WORKER_TOKEN',
        valueFrom: { secretKeyRef: { name: 'iii-iii-cluster-worker-token', key: 'token' } },
      });
    },
  );

  test('the token appears only in its Secret: not in the Deployment, ConfigMap or any other object, plain or base64', () => {
    const objects = rendered['default.yaml'];
    const secret = one(objects, 'Secret', 'iii-iii-cluster-worker-token');
    const token = decode(secret, 'token');
    for (const object of objects.filter((o) => o !== secret)) {
      const text = JSON.stringify(object);
      expect([object.kind, text.includes(token), text.includes(secret.data!['token'])]).toEqual([
        object.kind,
        false,
        false,
      ]);
    }
  });

  test('every helm template run draws a new token (only an installed release keeps it, through lookup)', () => {
    const token = (objects: K8sObject[]) => one(objects, 'Secret', 'iii-iii-cluster-worker-token').data!['token'];
    expect(token(render(['default.yaml']))).not.toBe(token(rendered['default.yaml']));
  });

  test('production: workerAuth.existingSecret is referenced, and the chart creates no Secret', () => {
    const objects = rendered['production.yaml'];
    expect(envOf(objects, 'III_WORKER_TOKEN')).toEqual({
      name: 'III_WORKER_TOKEN',
      valueFrom: { secretKeyRef: { name: 'iii-worker-token', key: 'token' } },
    });
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

describe('TLS (tls.*)', () => {
  const TLS_ON = ['--set', 'tls.enabled=true,tls.existingSecret=iii-tls'];
  const volumesOf = (objects: K8sObject[]) =>
    engineDeployment(objects).spec.template.spec.volumes as Array<{ name: string; secret?: unknown }>;
  const mountsOf = (objects: K8sObject[]) =>
    engineContainer(objects)['volumeMounts'] as Array<{ name: string; mountPath: string; readOnly?: boolean }>;

  test.each(['default.yaml', 'demo.yaml'])(
    '%s: off, so no III_TLS_* variables, certificate volumes, nodes Service, command or backend-protocol annotation',
    (file) => {
      const objects = rendered[file];
      for (const name of ['III_TLS_CERT_FILE', 'III_TLS_KEY_FILE', 'III_TLS_CA_FILE', 'POD_IP'])
        expect([name, envOf(objects, name)]).toEqual([name, undefined]);
      expect(volumesOf(objects).map((v) => v.name)).not.toEqual(expect.arrayContaining(['tls']));
      expect(mountsOf(objects).some((m) => m.mountPath.startsWith('/etc/iii-tls'))).toBe(false);
      expect(find(objects, 'Service', 'iii-iii-cluster-nodes')).toHaveLength(0);
      expect(engineContainer(objects)['command']).toBeUndefined();
      const withIngress = render([file], ['--set', 'ingress.enabled=true']);
      expect(
        one(withIngress, 'Ingress').metadata.annotations?.['nginx.ingress.kubernetes.io/backend-protocol'],
      ).toBeUndefined();
    },
  );

  test('on: the Secret is mounted read-only (key mode 0440) and named by III_TLS_CERT_FILE/III_TLS_KEY_FILE; caSecret becomes III_TLS_CA_FILE', () => {
    const objects = render(['default.yaml'], [...TLS_ON, '--set', 'tls.caSecret=iii-ca,tls.caSecretKey=root.pem']);
    expect(volumesOf(objects)).toContainEqual({
      name: 'tls',
      secret: {
        secretName: 'iii-tls',
        defaultMode: 0o440,
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    });
    expect(volumesOf(objects)).toContainEqual({
      name: 'tls-ca',
      secret: { secretName: 'iii-ca', items: [{ key: 'root.pem', path: 'ca.crt' }] },
    });
    expect(mountsOf(objects)).toContainEqual({ name: 'tls', mountPath: '/etc/iii-tls', readOnly: true });
    expect(mountsOf(objects)).toContainEqual({ name: 'tls-ca', mountPath: '/etc/iii-tls-ca', readOnly: true });
    expect(envOf(objects, 'III_TLS_CERT_FILE')).toEqual({ name: 'III_TLS_CERT_FILE', value: '/etc/iii-tls/tls.crt' });
    expect(envOf(objects, 'III_TLS_KEY_FILE')).toEqual({ name: 'III_TLS_KEY_FILE', value: '/etc/iii-tls/tls.key' });
    expect(envOf(objects, 'III_TLS_CA_FILE')).toEqual({ name: 'III_TLS_CA_FILE', value: '/etc/iii-tls-ca/ca.crt' });
    // The root filesystem stays read-only: the files arrive through volumes.
    expect(engineContainer(objects)['securityContext'].readOnlyRootFilesystem).toBe(true);
    // Without caSecret: no CA variable (the nodes trust Node's public CAs) and no CA volume.
    const noCa = render(['default.yaml'], TLS_ON);
    expect(envOf(noCa, 'III_TLS_CA_FILE')).toBeUndefined();
    expect(volumesOf(noCa).map((v) => v.name)).not.toContain('tls-ca');
  });

  test('on: each pod advertises <pod IP with dashes>.<fullname>-nodes.<namespace>.svc.<clusterDomain>, from the downward API pod IP', () => {
    const objects = render(['default.yaml'], [...TLS_ON, '--set', 'clusterDomain=k8s.example']);
    expect(envOf(objects, 'POD_IP')).toEqual({
      name: 'POD_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
    // Set by the command (below), so not also in env, where it would be the bare IP.
    expect(envOf(objects, 'III_ADVERTISE_HOST')).toBeUndefined();
    const command = engineContainer(objects)['command'] as string[];
    expect(command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    // The kubelet expands $(NAME) in command and args: the script must not contain any.
    expect(command.join(' ')).not.toContain('$(');
    for (const [ip, host] of [
      ['10.244.1.17', '10-244-1-17'],
      ['fd00:10:244::1f', 'fd00-10-244--1f'],
    ] as const) {
      const run = spawnSync(
        command[0],
        [
          command[1],
          command[2].replace('exec node bin/iii-cluster.js "$@"', 'echo "$III_ADVERTISE_HOST $*"'),
          ...command.slice(3),
          '--config',
          'x',
        ],
        { env: { PATH: process.env['PATH'], POD_IP: ip }, encoding: 'utf8' },
      );
      expect(run.stdout).toBe(`${host}.iii-iii-cluster-nodes.iii.svc.k8s.example --config x\n`);
    }
  });

  test('on: the nodes Service is headless, selects the engine pods and publishes not-ready ones (a draining node still owns channels)', () => {
    const objects = render(['default.yaml'], TLS_ON);
    const nodes = one(objects, 'Service', 'iii-iii-cluster-nodes');
    expect(nodes.spec).toEqual({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: engineDeployment(objects).spec.selector.matchLabels,
      ports: [{ name: 'ws', port: 49134, targetPort: 'ws', protocol: 'TCP' }],
    });
    // The ServiceMonitor still selects the metrics Service alone.
    expect(nodes.metadata.labels?.['iii-cluster/service']).toBe('nodes');
  });

  test('on: the Ingress dials the pods with HTTPS (nginx backend-protocol), unless ingress.annotations says otherwise', () => {
    const ingress = one(rendered['production.yaml'], 'Ingress');
    expect(ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/backend-protocol']).toBe('HTTPS');
    const own = one(
      render(
        ['production.yaml'],
        ['--set', 'ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/backend-protocol=GRPCS'],
      ),
      'Ingress',
    );
    expect(own.metadata.annotations?.['nginx.ingress.kubernetes.io/backend-protocol']).toBe('GRPCS');
  });

  test('production.yaml: TLS from the cert-manager Secret iii-tls, which also holds the CA', () => {
    const objects = rendered['production.yaml'];
    expect(volumesOf(objects)).toContainEqual(
      expect.objectContaining({ name: 'tls', secret: expect.objectContaining({ secretName: 'iii-tls' }) }),
    );
    expect(volumesOf(objects)).toContainEqual({
      name: 'tls-ca',
      secret: { secretName: 'iii-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
    expect(envOf(objects, 'III_TLS_CA_FILE')).toEqual({ name: 'III_TLS_CA_FILE', value: '/etc/iii-tls-ca/ca.crt' });
  });

  test('on without tls.existingSecret: rendering fails, saying what Secret to make and what it must name', () => {
    expect(renderFails(['default.yaml'], ['--set', 'tls.enabled=true'])).toContain(
      'iii-cluster: tls.enabled needs tls.existingSecret, a kubernetes.io/tls Secret (keys tls.crt, tls.key) whose certificate names *.iii-iii-cluster-nodes.default.svc.cluster.local',
    );
  });

  test('the schema rejects unknown tls keys, an empty caSecretKey and a clusterDomain that is not a DNS name', () => {
    expect(renderFails(['default.yaml'], ['--set', 'tls.certFile=/x'])).toMatch(/tls/);
    expect(renderFails(['default.yaml'], ['--set', 'tls.caSecretKey='])).toMatch(/caSecretKey/);
    expect(renderFails(['default.yaml'], ['--set', 'clusterDomain=Cluster Local'])).toMatch(/clusterDomain/);
  });
});

/** A Secret's files, by Secret name then key, for secret volumes the chart does not render (existingSecret). */
type SecretFiles = Record<string, Record<string, string | Buffer>>;

interface RunningPod {
  child: ChildProcess;
  exited: Promise<{ code: number | null; atMs: number }>;
  stderr(): string;
  /** The container's environment after the kubelet resolved it (before the command ran). */
  env: NodeJS.ProcessEnv;
}

/**
 * What the kubelet does with the engine container, on this machine: each volume becomes a temp
 * dir (a ConfigMap's data, a Secret's items: the chart's generated Secrets from the manifests,
 * others from `secrets`) and its mountPath is swapped for that dir in args and env values; env
 * is resolved (values, downward API `fieldValues`, Secret keys); then the container's command
 * (else the image's ENTRYPOINT, `node bin/iii-cluster.js`) runs with the args, from the image's
 * WORKDIR (the repository root holds the same bin/ and dist/).
 */
function startPod(objects: K8sObject[], fieldValues: Record<string, string>, secrets: SecretFiles = {}): RunningPod {
  const container = engineContainer(objects);
  const pod = engineDeployment(objects).spec.template.spec;
  type Volume = {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  };
  const secretData = (name: string): Record<string, string | Buffer> => {
    const rendered = find(objects, 'Secret', name)[0];
    if (rendered)
      return Object.fromEntries(Object.entries(rendered.data!).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    if (!secrets[name]) throw new Error(`the pod mounts Secret ${name}, which the test does not provide`);
    return secrets[name];
  };
  const paths: Array<[string, string]> = [];
  for (const mount of container['volumeMounts'] as Array<{ name: string; mountPath: string }>) {
    const volume = (pod.volumes as Volume[]).find((v) => v.name === mount.name)!;
    const dir = fs.mkdtempSync(path.join(tmpDir, `${mount.name}-`));
    const data = volume.configMap
      ? one(objects, 'ConfigMap', volume.configMap.name).data!
      : volume.secret
        ? secretData(volume.secret.secretName)
        : {};
    const items = volume.secret?.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      if (data[item.key] === undefined) throw new Error(`volume ${mount.name}: no key ${item.key}`);
      fs.writeFileSync(path.join(dir, item.path), data[item.key]);
    }
    paths.push([mount.mountPath, dir]);
  }
  const local = (value: string) => {
    const mount = paths.find(([mountPath]) => value.startsWith(`${mountPath}/`));
    return mount ? mount[1] + value.slice(mount[0].length) : value;
  };

  const env: NodeJS.ProcessEnv = { PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env['PATH']}` };
  type EnvEntry = {
    name: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
  };
  for (const entry of container['env'] as EnvEntry[]) {
    const from = entry.valueFrom;
    const value =
      entry.value ??
      (from?.secretKeyRef
        ? secretData(from.secretKeyRef.name)[from.secretKeyRef.key].toString()
        : fieldValues[from!.fieldRef!.fieldPath]);
    if (value === undefined) throw new Error(`env ${entry.name}: no value for ${JSON.stringify(from)}`);
    env[entry.name] = local(value);
  }
  env['LOG_LEVEL'] = 'warn';
  const args = (container['args'] as string[]).map(local);
  const command = (container['command'] as string[] | undefined) ?? ['node', 'bin/iii-cluster.js'];
  const child = spawn(command[0], [...command.slice(1), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; atMs: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, atMs: Date.now() })),
  );
  return { child, exited, stderr: () => stderr, env };
}

/** Polls the pod's readiness probe until 200 (15 s at most); throws with its stderr if it exits. */
async function waitReady(objects: K8sObject[], running: RunningPod): Promise<void> {
  const container = engineContainer(objects);
  const probe = container['readinessProbe'] as { httpGet: { path: string; port: string } };
  const url = `http://127.0.0.1:${portNumber(objects, probe.httpGet.port)}${probe.httpGet.path}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (running.child.exitCode !== null)
      throw new Error(`the engine exited with ${running.child.exitCode}: ${running.stderr()}`);
    if (Date.now() > deadline) throw new Error(`readiness probe not 200 within 15 s: ${running.stderr()}`);
    if (
      (await fetch(url).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopPod(running: RunningPod): Promise<void> {
  if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
  await running.exited;
}

describe('the rendered pod, run as a process', () => {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    const built = path.join(ROOT, 'dist/src/cli.js');
    if (!fs.existsSync(built))
      throw new Error(`${built} is missing: run \`npx tsc -p tsconfig.build.json\` first (npm test does it)`);
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** The chart rendered on free loopback ports, against the test Redis. */
  async function renderOnFreePorts(
    extra: string[],
  ): Promise<{ objects: K8sObject[]; ports: Record<'ws' | 'http' | 'stream' | 'metrics', number> }> {
    const [ws, http, stream, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const objects = render(
      ['default.yaml'],
      [
        '--set',
        `redis.url=${redis!.url}`,
        '--set',
        `ports.ws=${ws},ports.http=${http},ports.stream=${stream},ports.metrics=${metrics}`,
        '--set',
        'redis.keyPrefix=helm-test:',
        ...extra,
      ],
    );
    return { objects, ports: { ws: ws, http: http, stream: stream, metrics: metrics } };
  }

  test('answers its liveness and readiness probes, then stops cleanly on SIGTERM within the drain grace', async () => {
    const { objects, ports } = await renderOnFreePorts([]);
    const container = engineContainer(objects);
    const pod = engineDeployment(objects).spec.template.spec;
    const running = startPod(objects, { 'metadata.name': 'iii-iii-cluster-5d8c7-x2x9q', 'status.podIP': '127.0.0.1' });
    try {
      expect(running.env['III_WORKER_TOKEN']).toMatch(/^[A-Za-z0-9]{48}$/);
      await waitReady(objects, running);
      const probe = container['livenessProbe'] as { httpGet: { path: string; port: string } };
      expect(
        (await fetch(`http://127.0.0.1:${portNumber(objects, probe.httpGet.port)}${probe.httpGet.path}`)).status,
      ).toBe(200);
      expect(await fetch(`http://127.0.0.1:${ports.metrics}/metrics`).then((r) => r.text())).toMatch(
        /iii_connected_workers/,
      );

      const signalledAtMs = Date.now();
      running.child.kill('SIGTERM');
      const { code, atMs } = await running.exited;
      expect(code).toBe(0);
      // The kubelet SIGKILLs at terminationGracePeriodSeconds (counted from the preStop start).
      expect(atMs - signalledAtMs).toBeLessThan(
        (pod.terminationGracePeriodSeconds - Number(container['lifecycle'].preStop.exec.command[1])) * 1000,
      );
    } finally {
      await stopPod(running);
    }
  });

  test('with tls.enabled: serves wss:// and https:// from the mounted Secret, probes stay plain, and it advertises its DNS name under the nodes Service, which the README certificate covers', async () => {
    // A certificate with the README's cert-manager dnsNames, plus 127.0.0.1 to reach it here.
    const dnsNames = readmeCertificateDnsNames();
    const certs = makeCertificates([...dnsNames.map((n) => `DNS:${n}`), 'IP:127.0.0.1']);
    const pem = { ca: certs.ca, cert: fs.readFileSync(certs.certFile), key: fs.readFileSync(certs.keyFile) };
    const { objects, ports } = await renderOnFreePorts([
      '--set',
      'tls.enabled=true,tls.existingSecret=iii-tls,tls.caSecret=iii-tls',
    ]);
    const running = startPod(
      objects,
      { 'metadata.name': 'iii-iii-cluster-5d8c7-tls01', 'status.podIP': '127.0.0.1' },
      { 'iii-tls': { 'tls.crt': pem.cert, 'tls.key': pem.key, 'ca.crt': pem.ca } },
    );
    const redisClient = new Redis(redis!.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await waitReady(objects, running);
      const token = running.env['III_WORKER_TOKEN']!;
      const worker = new WebSocket(`wss://127.0.0.1:${ports.ws}`, {
        ca: certs.ca,
        headers: { authorization: `Bearer ${token}` },
      });
      await new Promise<void>((resolve, reject) => {
        worker.once('open', resolve);
        worker.once('error', reject);
      });
      await new Promise((resolve) => {
        worker.once('close', resolve);
        worker.close();
      });
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: ports.http, path: '/nothing-here', ca: certs.ca }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
          .once('error', reject);
      });
      expect(status).toBe(404);

      await redisClient.connect();
      // The node lists itself (with its URL) in the cluster's node hash on its heartbeat.
      let listed: string | null = null;
      for (let tries = 0; listed === null && tries < 50; tries++) {
        listed = await redisClient.hget('helm-test:nodes', 'iii-iii-cluster-5d8c7-tls01');
        if (listed === null) await new Promise((r) => setTimeout(r, 100));
      }
      const self = JSON.parse(listed ?? '{}') as { url?: string };
      const advertised = `127-0-0-1.${one(objects, 'Service', 'iii-iii-cluster-nodes').metadata.name}.iii.svc.cluster.local`;
      expect(self.url).toBe(`wss://${advertised}:${ports.ws}`);
      // What another node checks when it relays a channel here: the certificate names that host.
      expect(new X509Certificate(pem.cert).checkHost(advertised)).toBeDefined();
      expect(new X509Certificate(pem.cert).checkHost('iii-iii-cluster.iii.svc')).toBeDefined();
    } finally {
      redisClient.disconnect();
      await stopPod(running);
      certs.remove();
    }
  });
});

/** The dnsNames of the cert-manager Certificate in the chart README's "TLS" section. */
function readmeCertificateDnsNames(): string[] {
  const readme = fs.readFileSync(path.join(CHART, 'README.md'), 'utf8');
  const block = /```yaml\n(apiVersion: cert-manager\.io\/v1[\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('helm/iii-cluster/README.md has no cert-manager Certificate example');
  return (yaml.load(block[1]) as { spec: { dnsNames: string[] } }).spec.dnsNames;
}
