import type { EngineConfig, TlsMaterial } from '../config/types';
import { ConsoleServer } from '../console/server';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import type { Readiness } from '../observability/ops-server';
import type { Router } from '../router/router';

/** The node's web console when `engine.console.port` is set; it calls the node's functions in-process. */
export function nodeConsole(
  config: EngineConfig,
  router: Router,
  metrics: EngineMetrics,
  logger: Logger,
  readiness: () => Readiness,
): ConsoleServer | undefined {
  if (config.console.port === undefined) return undefined;
  return new ConsoleServer(
    // In-process and as the engine itself: the console needs no worker connection of its own.
    {
      nodeId: config.nodeId,
      call: async (functionId, data, observed, traceparent) =>
        (
          await (observed
            ? router.invoke({ functionId, data, ...(traceparent === undefined ? {} : { traceparent }) })
            : router.invokeUnobserved({ functionId, data }))
        ).result,
      readiness,
    },
    {
      host: config.console.host,
      port: config.console.port,
      readOnly: config.console.readOnly,
      token: config.listeners[0]?.authToken,
      // The HTTP listener's TLS (III_TLS_CERT_FILE gives every listener the same), else the worker listener's.
      ...tlsOf(config),
      logger,
      maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
      onLimitRefused: () => metrics.limitRefusals.inc({ limit: 'engine.console.max_connections_per_address' }),
    },
  );
}

function tlsOf(config: EngineConfig): { tls?: TlsMaterial } {
  const tls = config.tls?.http ?? config.listeners[0]?.tls;
  return tls === undefined ? {} : { tls };
}
