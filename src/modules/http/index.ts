import type { TriggerEntry } from '../../registry/types';
import type { EngineModule, ModuleHost } from '../module';
import { ChannelLink } from './channel-link';
import { CorsPolicy } from './cors';
import { globalMiddleware } from './middleware';
import { parseRoute, type HttpRoute } from './route';
import { RouteTable } from './route-table';
import { HttpServer } from './server';

const MODULE = 'iii-http';

/** The `iii-http` block, defaults filled in by the config schema (src/config/schema.ts). */
interface HttpConfig {
  port: number;
  host: string;
  default_timeout: number;
  concurrency_request_limit: number;
  body_limit_bytes: number;
  cors: { allowed_origins: string[]; allowed_methods: string[] };
  middleware: unknown;
}

/** Hosts a listener bound to every address is reached on loopback. */
function loopback(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * `iii-http` (iii-modules.md §5): the trigger type `http` and the HTTP server that turns requests
 * into invocations of the bound functions.
 */
export class HttpModule implements EngineModule {
  readonly name = MODULE;
  private readonly settings: HttpConfig;
  private readonly routes = new RouteTable();
  /** Bindings accepted, by trigger id, to find what to remove on unregister. */
  private readonly bindings = new Map<string, HttpRoute>();
  private server: HttpServer | undefined;
  private link: ChannelLink | undefined;

  constructor(readonly config: Record<string, unknown>) {
    this.settings = config as unknown as HttpConfig;
  }

  /** The bound port (the config may say 0). */
  get port(): number {
    return this.server?.port ?? 0;
  }

  /** Routes currently served. */
  get routeCount(): number {
    return this.routes.size;
  }

  async start(host: ModuleHost): Promise<void> {
    const s = this.settings;
    const log = host.logger.child({ module: MODULE });
    const link = new ChannelLink(host.channels, () => this.channelBaseUrl(host));
    this.link = link;
    this.server = new HttpServer({
      host,
      log,
      link,
      timeoutMs: s.default_timeout,
      bodyLimitBytes: s.body_limit_bytes,
      middleware: globalMiddleware(s.middleware),
      routes: this.routes,
      cors: new CorsPolicy(s.cors.allowed_origins, s.cors.allowed_methods),
      concurrencyLimit: s.concurrency_request_limit,
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
    this.link?.close();
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

  /**
   * Where the engine's own ends of data channels connect: its first worker listener. The bound
   * port is read from the engine (the configured one may be 0); ModuleHost does not declare it
   * yet, hence the optional read.
   */
  private channelBaseUrl(host: ModuleHost): string {
    const listener = host.config.listeners[0];
    const bound = (host as ModuleHost & { readonly port?: number }).port;
    return `ws://${loopback(listener.host)}:${bound ?? listener.port}`;
  }
}
