/**
 * Bench child: the server under test. `node server.js engine` runs our Engine on a loopback port
 * with logging off; `node server.js relay` runs the baseline relay. Reports `{type:'ready', port}`.
 */
import type { EngineConfig } from '../../src/config/types';
import { serveParent, toParent } from '../lib/child';
import type { ServerCpu, ServerKind, ServerReady } from './protocol';
import { Relay } from './relay';

function engineConfig(): EngineConfig {
  return {
    nodeId: 'bench-node',
    logLevel: 'silent',
    invocationTimeoutMs: 30_000,
    listeners: [{ instanceId: 'iii-worker-manager', host: '127.0.0.1', port: 0, handshakeTimeoutMs: 10_000 }],
    limits: { maxMessageBytes: 16 * 1024 * 1024, maxPendingCallsPerWorker: 10_000, maxSendQueueBytes: 32 * 1024 * 1024 },
    metrics: { host: '127.0.0.1', port: 0 },
    channels: { ttlMs: 300_000, defaultBufferMessages: 64, maxBufferMessages: 1024 },
    httpFunctions: { enabled: true, security: { url_allowlist: ['*'], block_private_ips: true, require_https: true } },
    cluster: {},
    modules: {},
  };
}

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind;
  let port: number;
  let close: () => Promise<void>;
  if (kind === 'engine') {
    // Loaded only here, so the relay process never contains engine code.
    const { Engine } = require('../../src/engine/engine') as typeof import('../../src/engine/engine');
    const { silentLogger } = require('../../src/observability/logger') as typeof import('../../src/observability/logger');
    const engine = new Engine(engineConfig(), { logger: silentLogger });
    await engine.start();
    port = engine.port;
    close = () => engine.stop();
  } else if (kind === 'relay') {
    const relay = new Relay();
    port = await relay.listen('127.0.0.1', 0);
    close = () => relay.close();
  } else {
    throw new Error(`unknown server kind ${JSON.stringify(kind)} (engine | relay)`);
  }
  serveParent((message) => {
    if (message.type !== 'cpu') return;
    const usage = process.cpuUsage();
    toParent({ type: 'cpu', userUs: usage.user, systemUs: usage.system } satisfies ServerCpu);
  }, close);
  toParent({ type: 'ready', port } satisfies ServerReady);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
