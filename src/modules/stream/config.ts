import type { StreamAdapterConfig } from './adapters';
import type { StreamClientLimits } from './limits';

/** The `iii-stream` config block (iii-modules.md §9.1). */
export interface StreamModuleConfig {
  port: number;
  host: string;
  /** Function called at every client WebSocket upgrade; none when undefined. */
  authFunction: string | undefined;
  adapter: StreamAdapterConfig;
  /** ours: clients (WebSocket and Socket.IO) one address may hold; 0 = unlimited. */
  maxConnectionsPerAddress: number;
  /** ours: `max_frame_bytes`, `max_subscriptions_per_connection`, `max_send_buffer_bytes`. */
  limits: StreamClientLimits;
}

/** Types the block; the schema (src/config/schema.ts) has already checked it and filled in defaults. */
export function readStreamConfig(config: Record<string, unknown>): StreamModuleConfig {
  const auth = config['auth_function'];
  return {
    port: config['port'] as number,
    host: config['host'] as string,
    authFunction: typeof auth === 'string' ? auth : undefined,
    adapter: config['adapter'] as StreamAdapterConfig,
    maxConnectionsPerAddress: config['max_connections_per_address'] as number,
    limits: {
      maxFrameBytes: config['max_frame_bytes'] as number,
      maxSubscriptionsPerConnection: config['max_subscriptions_per_connection'] as number,
      maxSendBufferBytes: config['max_send_buffer_bytes'] as number,
    },
  };
}
