import type { EngineConfig, TlsMaterial, WorkerListenerConfig } from '../config/types';
import type { SignIn } from '../console/sign-in';
import { DEFAULT_NAMESPACE } from '../registry/namespaces';
import type { Registry } from '../registry/registry';
import { authInput } from './access/auth-input';
import { authenticateInput } from './access/authenticate';
import type { CallFunction } from './access/hooks';
import { ConsoleServer } from '../console/server';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import type { Readiness } from '../observability/ops-server';
import type { Router } from '../router/router';

/** The node's web console when `engine.console.port` is set; it calls the node's functions in-process. */
export function nodeConsole(
  config: EngineConfig,
  router: Router,
  registry: Registry,
  metrics: EngineMetrics,
  logger: Logger,
  readiness: () => Readiness,
): ConsoleServer | undefined {
  if (config.console.port === undefined) return undefined;
  const signIn = consoleSignIn(config.listeners[0], router, registry);
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
      ...(signIn === undefined ? {} : { signIn }),
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

/**
 * Sign-in through the worker port's auth function (console/sign-in.ts), when that port has one
 * and no token: the auth function gets what a worker connecting there with `Authorization:
 * Bearer <credential>` would send, and the console allows what that worker could call.
 */
function consoleSignIn(
  listener: WorkerListenerConfig | undefined,
  router: Router,
  registry: Registry,
): SignIn | undefined {
  const authFunctionId = listener?.rbac?.auth_function_id;
  if (listener === undefined || authFunctionId === undefined || listener.authToken !== undefined) return undefined;
  const call: CallFunction = (functionId, data, timeoutMs) => router.invoke({ functionId, data, timeoutMs });
  return async (credential, request) => {
    const input = authInput(request, false) as { headers: Record<string, string> };
    // The console's own cookie is not the auth function's business; the credential is the bearer.
    delete input.headers['cookie'];
    input.headers['authorization'] = `Bearer ${credential}`;
    const access = await authenticateInput(listener, authFunctionId, input, call);
    return {
      denial: (functionId) =>
        access.invokeDenial(functionId, () => {
          const entry = registry.function(functionId);
          return entry && { ...entry, id: functionId, namespace: DEFAULT_NAMESPACE };
        }),
    };
  };
}
