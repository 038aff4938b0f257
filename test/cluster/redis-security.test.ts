import { randomUUID } from 'node:crypto';
import { TriggerAction } from 'iii-sdk';
import { Redis } from 'ioredis';
import pino from 'pino';
import { redisOptions, type RedisEndpoint } from '../../src/cluster/redis-options';
import type { EngineConfig } from '../../src/config/types';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import type { StreamModule } from '../../src/modules/stream';
import { call, rejection } from '../support/calls';
import { sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { startNodeProcess } from '../support/node-process';
import { makeTestCerts, type TestCerts } from '../support/redis-certs';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * Redis with a password and over TLS (rediss://): every connection a node opens (bus,
 * membership, registry, state, stream, Socket.IO adapter, BullMQ, the cron lock) authenticates
 * and encrypts; a wrong password or a TLS mismatch fails in words a user understands; the
 * password never reaches a log line. Real redis-servers: one plain with `requirepass`, one
 * TLS-only with `requirepass`.
 */

/** Characters that must be percent-encoded in a URL, so decoding is tested too. */
const PASSWORD = `p@ss/w:rd-${randomUUID().slice(0, 8)}`;

let certs: TestCerts;
let plain: TestRedis;
let tls: TestRedis;
const engines: TestEngine[] = [];

beforeAll(async () => {
  certs = makeTestCerts();
  [plain, tls] = await Promise.all([
    startRedis({ password: PASSWORD }),
    startRedis({ password: PASSWORD, tls: certs }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), tls?.stop()]);
  certs?.remove();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

/** `redis://:<password>@host:port` (the password percent-encoded). */
function withPassword(redis: TestRedis, password = PASSWORD): string {
  return redis.url.replace('://', `://:${encodeURIComponent(password)}@`);
}

function newPrefix(): string {
  return `t${randomUUID().slice(0, 8)}:`;
}

/** Nodes of one cluster; `settings[i]` is node i's Redis settings (URL, password, CA). */
async function cluster(
  settings: Array<Omit<EngineConfig['cluster'], 'keyPrefix'>>,
  keyPrefix = newPrefix(),
): Promise<TestEngine[]> {
  const nodes = await Promise.all(
    settings.map((s, i) => startEngine({ nodeId: `node-${i + 1}`, cluster: { ...s, keyPrefix } })),
  );
  engines.push(...nodes);
  return nodes;
}

/** An engine with a logger writing JSON lines (debug and up) into `lines`. */
function loggedEngine(config: EngineConfig, lines: string[]): Engine {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return createEngine(config, { logger });
}

/** Starts `engine`, expecting it to fail; stops it (nothing may keep reconnecting) and returns the error. */
async function failedStart(engine: Engine): Promise<Error> {
  const err = (await rejection(engine.start(), 'the engine start')) as Error;
  await engine.stop();
  return err;
}

/** An administrative connection to `redis`. */
async function admin(endpoint: RedisEndpoint): Promise<Redis> {
  const redis = new Redis({ ...redisOptions(endpoint), lazyConnect: true });
  await redis.connect();
  return redis;
}

async function crossNodeCall(a: TestEngine, b: TestEngine): Promise<void> {
  b.worker('adder').registerFunction('math::add', async (input: { a: number; b: number }) => ({
    sum: input.a + input.b,
  }));
  await waitFor(() => a.engine.registry.pool('math::add').length === 1, 'math::add mirrored on node 1');
  await expect(call(a.worker('caller'), 'math::add', { a: 2, b: 3 })).resolves.toEqual({ sum: 5 });
}

describe('Redis with a password', () => {
  test('nodes with the password in the URL or in III_REDIS_PASSWORD (replacing a wrong one) route a call across the cluster', async () => {
    const [a, b] = await cluster([
      { redisUrl: withPassword(plain) },
      { redisUrl: withPassword(plain, 'stale'), redisPassword: PASSWORD },
    ]);
    await crossNodeCall(a, b);
  });

  test('a wrong password fails the start with WRONGPASS in words, and neither error nor logs hold the password', async () => {
    const wrong = `wrong-${randomUUID()}`;
    const lines: string[] = [];
    const err = await failedStart(
      loggedEngine(
        testConfig({ nodeId: 'n1', cluster: { redisUrl: withPassword(plain, wrong), keyPrefix: newPrefix() } }),
        lines,
      ),
    );
    expect(err.message).toMatch(
      /cannot connect to Redis at 127\.0\.0\.1:\d+: Redis refused the user name or password \(WRONGPASS\): check III_REDIS_PASSWORD/,
    );
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toContainEqual(expect.stringContaining('WRONGPASS'));
    for (const text of [err.message, err.stack ?? '', ...lines]) {
      expect(text).not.toContain(wrong);
    }
  });

  test('no password at all fails the start with NOAUTH, saying where to put it', async () => {
    const err = await failedStart(
      createEngine(testConfig({ nodeId: 'n1', cluster: { redisUrl: plain.url, keyPrefix: newPrefix() } })),
    );
    expect(err.message).toMatch(
      /Redis requires a password \(NOAUTH\): put it in the URL \(redis:\/\/:PASSWORD@host:port\) or in III_REDIS_PASSWORD/,
    );
  });

  test('a node whose Redis changes its password is not ready, /readyz names WRONGPASS; it is ready again once the passwords match', async () => {
    const own = await startRedis({ password: PASSWORD });
    const connections: Redis[] = [];
    try {
      const [node] = await cluster([{ redisUrl: own.url, redisPassword: PASSWORD }]);
      expect(node.engine.readiness()).toMatchObject({ ready: true, checks: { redis: 'ok' } });
      const rotated = `rotated-${randomUUID()}`;
      const before = await admin({ url: own.url, password: PASSWORD });
      connections.push(before);
      await before.config('SET', 'requirepass', rotated);
      await before.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
      const down = await waitFor(() => {
        const readiness = node.engine.readiness();
        return !readiness.ready && String(readiness.checks['redis']).includes('WRONGPASS') && readiness;
      }, 'not ready, naming WRONGPASS');
      expect(down.checks['redis']).toMatch(/^Redis refused the user name or password \(WRONGPASS\)/);
      const after = await admin({ url: own.url, password: rotated });
      connections.push(after);
      await after.config('SET', 'requirepass', PASSWORD);
      await waitFor(() => node.engine.readiness().ready, 'ready again', 10_000);
    } finally {
      for (const connection of connections) connection.disconnect();
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await own.stop();
    }
  });
});

describe('Redis over TLS (rediss://) with a password', () => {
  let nodes: TestEngine[] = [];
  let keyPrefix = '';
  const endpoint = (): RedisEndpoint => ({ url: tls.url, password: PASSWORD, tlsCaFile: certs.ca });

  beforeAll(async () => {
    keyPrefix = newPrefix();
    const settings = { redisUrl: tls.url, redisPassword: PASSWORD, redisTlsCaFile: certs.ca };
    nodes = await Promise.all(
      [1, 2].map((i) => startEngine({ nodeId: `node-${i}`, cluster: { ...settings, keyPrefix } })),
    );
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
  });

  test('a call is routed across the nodes', async () => {
    await crossNodeCall(nodes[0], nodes[1]);
  });

  test('a state value set through one node is read through the other', async () => {
    await call(nodes[0].worker('writer'), 'state::set', { scope: 'tls', key: 'k', value: { ok: true } });
    expect(await call(nodes[1].worker('reader'), 'state::get', { scope: 'tls', key: 'k' })).toEqual({ ok: true });
  });

  test('a job enqueued on one node is handled by the worker on the other (BullMQ)', async () => {
    const got: unknown[] = [];
    nodes[1].worker('consumer').registerFunction('tls::job', async (input: unknown) => void got.push(input));
    await waitFor(() => nodes[0].engine.registry.pool('tls::job').length === 1, 'tls::job mirrored on node 1');
    await nodes[0]
      .worker('producer')
      .trigger({ function_id: 'tls::job', payload: { n: 1 }, action: TriggerAction.Enqueue({ queue: 'default' }) });
    await waitFor(() => got.length === 1, 'the delivery on node 2', 10_000);
    expect(got).toEqual([{ n: 1 }]);
  });

  test('a cron job both nodes schedule fires once per tick (the Redlock lease and tick claims over TLS)', async () => {
    const worker = nodes[0].worker('cron-worker');
    const ticks: string[] = [];
    worker.registerFunction(
      'tls::tick',
      async (payload: { scheduled_time: string }) => void ticks.push(payload.scheduled_time),
    );
    await waitFor(
      () => nodes.every((n) => n.engine.registry.pool('tls::tick').length === 1),
      'tls::tick on both nodes',
    );
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'tls::tick',
      config: { expression: '* * * * * *' },
    });
    await waitFor(() => ticks.length >= 3, 'three ticks', 10_000);
    trigger.unregister();
    await sleep(300);
    expect(new Set(ticks).size).toBe(ticks.length);
  }, 20_000);

  test('every connection of a node, the Socket.IO adapter and BullMQ workers included, is on the TLS port', async () => {
    const probe = await admin(endpoint());
    try {
      const names = ((await probe.client('LIST')) as string)
        .split('\n')
        .map((line) => /name=(\S*)/.exec(line)?.[1])
        .filter(Boolean);
      const suffixes = [
        'registry',
        'bus-pub',
        'bus-sub',
        'membership',
        'state',
        'stream',
        'stream-sub',
        'stream-socketio',
        'stream-socketio-sub',
        'cron',
        'queue',
        'queue:worker',
      ];
      for (const suffix of suffixes) expect(names).toContain(`iii:node-2:${suffix}`);
      const requestChannel = `${keyPrefix}socket.io-request#/#`;
      const [, subscribers] = (await probe.call('PUBSUB', 'NUMSUB', requestChannel)) as [string, number];
      expect(subscribers).toBe(2);
      expect(nodes[1].engine.module<StreamModule>('iii-stream')!.port).toBeGreaterThan(0);
    } finally {
      probe.disconnect();
    }
  });

  test('without the CA file the start fails: the certificate is not trusted, set III_REDIS_TLS_CA_FILE', async () => {
    const err = await failedStart(
      createEngine(
        testConfig({ nodeId: 'n1', cluster: { redisUrl: tls.url, redisPassword: PASSWORD, keyPrefix: newPrefix() } }),
      ),
    );
    expect(err.message).toMatch(
      /at 127\.0\.0\.1:\d+ \(TLS\): Redis's TLS certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN.*set III_REDIS_TLS_CA_FILE/,
    );
  });

  test('redis:// against the TLS port fails the start, hinting at rediss://', async () => {
    const plainUrl = tls.url.replace('rediss://', 'redis://');
    const err = await failedStart(
      createEngine(
        testConfig({ nodeId: 'n1', cluster: { redisUrl: plainUrl, redisPassword: PASSWORD, keyPrefix: newPrefix() } }),
      ),
    );
    expect(err.message).toMatch(
      /Redis reset the connection \(ECONNRESET\); if this port serves TLS, use a rediss:\/\/ URL/,
    );
  });

  test('rediss:// against a plain port fails the start once the handshake times out (ioredis connectTimeout, 10 s), hinting at redis://', async () => {
    const err = await failedStart(
      createEngine(
        testConfig({
          nodeId: 'n1',
          cluster: {
            redisUrl: plain.url.replace('redis://', 'rediss://'),
            redisPassword: PASSWORD,
            redisTlsCaFile: certs.ca,
            keyPrefix: newPrefix(),
          },
        }),
      ),
    );
    expect(err.message).toMatch(
      /\(TLS\): the TLS handshake with Redis failed \(ETIMEDOUT\): a rediss:\/\/ URL needs a port serving TLS .*for a plain port use redis:\/\//,
    );
  }, 30_000);

  test("a module's own adapter.config.redis_url (rediss://, no password) gets TLS, the CA file and III_REDIS_PASSWORD", async () => {
    const config = testConfig({
      nodeId: 'solo',
      cluster: { keyPrefix: newPrefix(), redisPassword: PASSWORD, redisTlsCaFile: certs.ca },
    });
    config.modules['state'].config['adapter'] = { name: 'redis', config: { redis_url: tls.url } };
    const engine = createEngine(config);
    await engine.start();
    const probe = await admin(endpoint());
    try {
      await engine.invoke({ functionId: 'state::set', data: { scope: 'own', key: 'k', value: 42 } });
      expect(await engine.invoke({ functionId: 'state::get', data: { scope: 'own', key: 'k' } })).toEqual({
        result: 42,
      });
      const names = ((await probe.client('LIST')) as string).split('\n').map((line) => /name=(\S*)/.exec(line)?.[1]);
      expect(names).toContain('iii:solo:state');
    } finally {
      probe.disconnect();
      await engine.stop();
    }
  });
});

describe('key prefix', () => {
  test("two clusters with different prefixes on one Redis do not see each other's functions", async () => {
    const [x1, x2] = await cluster([{ redisUrl: withPassword(plain) }, { redisUrl: withPassword(plain) }], newPrefix());
    const [y1] = await cluster([{ redisUrl: withPassword(plain) }], newPrefix());
    x2.worker('x-worker').registerFunction('iso::who', async () => ({ cluster: 'x' }));
    y1.worker('y-worker').registerFunction('iso::who', async () => ({ cluster: 'y' }));
    x2.worker('x-only').registerFunction('iso::x_only', async () => ({}));
    await waitFor(() => x1.engine.registry.pool('iso::x_only').length === 1, 'iso::x_only mirrored inside cluster x');
    expect(x1.engine.registry.pool('iso::who')).toHaveLength(1);
    expect(y1.engine.registry.pool('iso::x_only')).toHaveLength(0);
    expect(await call(x1.worker('x-caller'), 'iso::who', {})).toEqual({ cluster: 'x' });
    expect(await call(y1.worker('y-caller'), 'iso::who', {})).toEqual({ cluster: 'y' });
  });
});

describe('a node process', () => {
  const SECRETS = [PASSWORD, encodeURIComponent(PASSWORD)];

  test('at debug level it never prints the password, also when Redis starts refusing it; /readyz answers 503 naming WRONGPASS', async () => {
    const own = await startRedis({ password: PASSWORD });
    const connections: Redis[] = [];
    const node = await startNodeProcess({
      nodeId: 'logged',
      redisUrl: withPassword(own),
      keyPrefix: newPrefix(),
      env: { LOG_LEVEL: 'debug' },
    });
    try {
      expect(node.output()).toContain('iii-cluster engine ready');
      const rotated = `rotated-${randomUUID()}`;
      const control = await admin({ url: own.url, password: PASSWORD });
      connections.push(control);
      await control.config('SET', 'requirepass', rotated);
      // Every connection of the node must log in again, with the old password, BullMQ's included.
      await control.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
      await waitFor(
        () => /WRONGPASS.*queue consumer: redis error/.test(node.output()),
        'a BullMQ worker connection refused (logged at debug)',
        10_000,
      );
      // The cluster's own connections may still be between two reconnection attempts (the
      // BullMQ line above can come first on a loaded machine): wait for their refusal too.
      const readyz = await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`);
          const body = JSON.stringify(await response.json());
          return body.includes('WRONGPASS') ? { status: response.status, body } : undefined;
        },
        '/readyz naming WRONGPASS',
        10_000,
      );
      expect(readyz.status).toBe(503);
      expect(node.output()).toMatch(/"level":40.*Redis refused the user name or password \(WRONGPASS\)/);
      for (const secret of [...SECRETS, rotated]) expect(node.output()).not.toContain(secret);
    } finally {
      for (const connection of connections) connection.disconnect();
      await node.kill('SIGKILL');
      await own.stop();
    }
  }, 30_000);

  test('refused at start it exits saying WRONGPASS, without printing the password', async () => {
    const wrong = `wrong-${randomUUID()}`;
    const refused = (await rejection(
      startNodeProcess({
        nodeId: 'refused',
        redisUrl: withPassword(plain, wrong),
        keyPrefix: newPrefix(),
        env: { LOG_LEVEL: 'debug' },
      }),
      'a node with a wrong password',
    )) as Error;
    expect(refused.message).toMatch(/exited with 1.*WRONGPASS/s);
    for (const secret of [...SECRETS, wrong]) expect(refused.message).not.toContain(secret);
  });
});
