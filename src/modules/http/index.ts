import type { TriggerEntry } from '../../registry/types';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { CorsPolicy } from './cors';
import { globalMiddleware } from './middleware';
import { parseRoute, type HttpRoute } from './route';
import { RouteTable } from './route-table';
import { HttpServer } from './server';
import { needsRestart } from '../reconfigure';

const MODULE = 'iii-http';
/** Keys a running server takes without a restart (for requests that start afterwards). */
const LIVE_KEYS = ['default_timeout', 'body_limit_bytes', 'cors'] as const;

/** The `iii-http` block, defaults filled in by the config schema (src/config/schema.ts). */
interface HttpConfig {
  port: number;
  host: string;
  default_timeout: number;
  concurrency_request_limit: number;
  max_queued_requests: number;
  body_limit_bytes: number;
  max_header_count: number;
  max_connections_per_address: number;
  cors: { allowed_origins: string[]; allowed_methods: string[] };
  middleware: unknown;
}

/**
 * `iii-http` (iii-modules.md §5): the trigger type `http` and the HTTP server that turns requests
 * into invocations of the bound functions.
 */
export class HttpModule implements EngineModule {
  readonly name = MODULE;
  private settings: HttpConfig;
  private readonly routes = new RouteTable();
  /** Bindings accepted, by trigger id, to find what to remove on unregister. */
  private readonly bindings = new Map<string, HttpRoute>();
  private server: HttpServer | undefined;

  constructor(readonly config: Record<string, unknown>) {
    this.settings = config as unknown as HttpConfig;
  }

  /** The bound port (the config may say 0). */
  get port(): number {
    return this.server?.port ?? 0;
  }

  /** Requests waiting for a concurrency slot now (at most `max_queued_requests`). */
  get queuedRequests(): number {
    return this.server?.queuedRequests ?? 0;
  }

  /** Routes currently served. */
  get routeCount(): number {
    return this.routes.size;
  }

  async start(host: ModuleHost): Promise<void> {
    const s = this.settings;
    const log = host.logger.child({ module: MODULE });
    this.server = new HttpServer({
      host,
      log,
      timeoutMs: s.default_timeout,
      bodyLimitBytes: s.body_limit_bytes,
      middleware: globalMiddleware(s.middleware),
      routes: this.routes,
      cors: new CorsPolicy(s.cors.allowed_origins, s.cors.allowed_methods),
      concurrencyLimit: s.concurrency_request_limit,
      maxQueuedRequests: s.max_queued_requests,
      maxHeaderCount: s.max_header_count,
      maxConnectionsPerAddress: s.max_connections_per_address,
    });
    await host.registerTriggerType(
      MODULE,
      { id: 'http', description: 'Calls the function for HTTP requests matching api_path and http_method' },
      {
        registerTrigger: (trigger) => this.register(trigger),
        unregisterTrigger: (trigger) => this.unregister(trigger),
      },
    );
    const port = await this.server.listen(s.port, s.host);
    log.info({ host: s.host, port }, 'http trigger server listening');
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  /** Hot reload: the timeout, body limit and CORS apply to requests that start from now on. */
  async reconfigure(config: Record<string, unknown>): Promise<string[]> {
    const next = config as unknown as HttpConfig;
    const restart = needsRestart(this.settings, next, LIVE_KEYS);
    const { default_timeout, body_limit_bytes, cors } = next;
    this.server?.retune({
      timeoutMs: default_timeout,
      bodyLimitBytes: body_limit_bytes,
      cors: new CorsPolicy(cors.allowed_origins, cors.allowed_methods),
    });
    this.settings = { ...this.settings, default_timeout, body_limit_bytes, cors };
    return restart;
  }

  private register(trigger: TriggerEntry): void {
    const route = parseRoute(trigger);
    this.routes.add(route);
    this.bindings.set(trigger.id, route);
  }

  private unregister(trigger: TriggerEntry): void {
    const route = this.bindings.get(trigger.id);
    if (!route) return;
    this.bindings.delete(trigger.id);
    this.routes.remove(route);
  }
}
