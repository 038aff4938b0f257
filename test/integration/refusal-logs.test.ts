import http from 'node:http';
import pino from 'pino';
import type { EngineConfig } from '../../src/config/types';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import type { HttpModule } from '../../src/modules/http';
import type { StreamModule } from '../../src/modules/stream';
import { testConfig, withModule } from '../support/engine';
import { openSocket, refusedUpgrade } from '../support/upgrades';

/**
 * Refused connections are logged at most once a minute per peer (and reason): iii-sdk retries a
 * refused socket forever and a hostile peer can retry as fast as it likes, so one warn line per
 * attempt would let either fill the logs. Real engine, real sockets, the engine's own logger.
 */

const REFUSALS = 20;

interface Captured {
  engine: Engine;
  /** Every warn (or worse) line the engine wrote, parsed. */
  warnings: Array<Record<string, unknown>>;
}

let running: Engine | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function engineWith(config: EngineConfig): Promise<Captured> {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const engine = createEngine(config, { logger });
  await engine.start();
  running = engine;
  return { engine, warnings };
}

/** One GET; `agent` false opens (and closes) a connection of its own. */
function get(port: number, agent: http.Agent | false): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/nothing', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

function matching(warnings: Array<Record<string, unknown>>, status: number): Array<Record<string, unknown>> {
  return warnings.filter((w) => w.status === status);
}

describe('refusal logs', () => {
  it(`worker port: ${REFUSALS} refused /otel upgrades from one peer write one warn line; the worker path has its own`, async () => {
    const config = testConfig();
    const { engine, warnings } = await engineWith({
      ...config,
      listeners: [{ ...config.listeners[0], authToken: 'the-token' }],
    });
    const url = `ws://127.0.0.1:${engine.port}`;
    for (let i = 0; i < REFUSALS; i++) expect((await refusedUpgrade(`${url}/otel`)).status).toBe(401);
    const lines = matching(warnings, 401);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      path: '/otel',
      peer: '127.0.0.1',
      status: 401,
      msg: expect.stringContaining('requires the worker token'),
    });
    expect(lines[0]).not.toHaveProperty('suppressed');
    // Another reason is another key: a refused worker socket is still reported.
    expect((await refusedUpgrade(url)).status).toBe(401);
    expect(matching(warnings, 401).map((w) => w.path)).toEqual(['/otel', '/']);
  });

  it(`worker port: ${REFUSALS} upgrades over max_connections_per_address write one warn line`, async () => {
    const config = testConfig();
    const { engine, warnings } = await engineWith({
      ...config,
      limits: { ...config.limits, maxConnectionsPerAddress: 1 },
    });
    const url = `ws://127.0.0.1:${engine.port}`;
    const held = await openSocket(url);
    try {
      for (let i = 0; i < REFUSALS; i++) expect((await refusedUpgrade(url)).status).toBe(429);
      const lines = matching(warnings, 429);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        path: '/',
        peer: '127.0.0.1',
        msg: expect.stringContaining('at most 1 per client address'),
      });
    } finally {
      held.terminate();
    }
  });

  it(`iii-http: ${REFUSALS} connections over max_connections_per_address write one warn line`, async () => {
    const { engine, warnings } = await engineWith(testConfig(withModule('http', { max_connections_per_address: 1 })));
    const port = engine.module<HttpModule>('iii-http')!.port;
    const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(port, keep)).toBe(404);
      for (let i = 0; i < REFUSALS; i++) expect(await get(port, false)).toBe(429);
      const lines = matching(warnings, 429);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        module: 'iii-http',
        peer: '127.0.0.1',
        msg: expect.stringContaining('iii-http.max_connections_per_address'),
      });
    } finally {
      keep.destroy();
    }
  });

  it(`iii-stream: ${REFUSALS} upgrades over max_connections_per_address write one warn line`, async () => {
    const { engine, warnings } = await engineWith(testConfig(withModule('stream', { max_connections_per_address: 1 })));
    const url = `ws://127.0.0.1:${engine.module<StreamModule>('iii-stream')!.port}/`;
    const held = await openSocket(url);
    try {
      for (let i = 0; i < REFUSALS; i++) expect((await refusedUpgrade(url)).status).toBe(429);
      const lines = matching(warnings, 429);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        peer: '127.0.0.1',
        msg: expect.stringContaining('iii-stream.max_connections_per_address'),
      });
    } finally {
      held.terminate();
    }
  });
});
