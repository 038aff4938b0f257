import path from 'node:path';
import { registerWorker } from 'iii-sdk';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { startRedis, type TestRedis } from '../support/redis';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('config/cluster.yaml', () => {
  it('starts a node whose modules all keep their data in Redis', async () => {
    const env = {
      III_REDIS_URL: redis.url,
      III_WS_PORT: '0',
      III_HTTP_PORT: '0',
      III_STREAM_PORT: '0',
      III_METRICS_PORT: '0',
      III_NODE_ID: 'from-file',
      LOG_LEVEL: 'silent',
    };
    const { config } = loadConfig({ path: path.resolve(__dirname, '../../config/cluster.yaml'), env });
    const engine = createEngine(config, { logger: silentLogger, env });
    await engine.start();
    try {
      expect(engine.readiness().ready).toBe(true);
      const client = registerWorker(`ws://127.0.0.1:${engine.port}`, {
        workerName: 'probe',
        enableMetricsReporting: false,
        otel: { enabled: false },
      });
      await client.trigger({ function_id: 'state::set', payload: { scope: 'cfg', key: 'k', value: 42 } });
      await client.shutdown();
      const probe = new Redis(redis.url);
      expect(await probe.hget('iii:state:cfg', 'k')).toBe('42');
      probe.disconnect();
    } finally {
      await engine.stop();
    }
  });
});
