import { loadConfig } from './load';
import type { EngineConfig } from './types';

/**
 * The built-in defaults bound to loopback on free ports, logging nothing: one node for tests,
 * benchmarks and embedding (read the chosen ports from the started engine).
 */
export function ephemeralConfig(overrides: Partial<EngineConfig> = {}): EngineConfig {
  const { config } = loadConfig({
    env: {
      III_WS_PORT: '0',
      III_HTTP_PORT: '0',
      III_STREAM_PORT: '0',
      III_METRICS_PORT: '0',
      LOG_LEVEL: 'silent',
      III_NODE_ID: 'local',
    },
  });
  config.listeners = config.listeners.map((listener) => ({ ...listener, host: '127.0.0.1' }));
  config.metrics = { host: '127.0.0.1', port: 0 };
  // Configuration in memory, unless a cluster shares it through Redis: nothing under ./config.
  if (
    overrides.cluster?.redisUrl === undefined &&
    overrides.cluster?.redisSentinels === undefined &&
    overrides.cluster?.redisClusterNodes === undefined
  )
    config.modules['configuration'] = { enabled: true, config: { adapter: { name: 'memory' } } };
  return { ...config, ...overrides };
}
