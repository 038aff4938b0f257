import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EngineMetrics } from './metrics';

export interface Readiness {
  ready: boolean;
  /** The node is stopping: /readyz says `draining` (not `not_ready`) so the cause is plain. */
  draining?: boolean;
  checks: Record<string, boolean | string>;
}

/**
 * The operations port: `/healthz` (the process is alive), `/readyz` (it should get traffic)
 * and `/metrics` (Prometheus text format). Kept off the public ports. It is the last listener
 * to close on stop: during a drain `/healthz` stays 200 (the process must not be killed as
 * unhealthy) while `/readyz` answers 503 `{"status":"draining"}` (take it out of the balancer).
 */
export class OpsServer {
  private readonly server: http.Server;

  constructor(
    private readonly metrics: EngineMetrics,
    private readonly readiness: () => Readiness,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const readiness = this.readiness();
      const status = readiness.ready ? 'ready' : readiness.draining ? 'draining' : 'not_ready';
      return json(res, readiness.ready ? 200 : 503, { status, checks: readiness.checks });
    }
    if (path === '/metrics') {
      try {
        const body = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(body);
      } catch (err) {
        json(res, 500, { error: { code: 'metrics_failed', message: (err as Error).message } });
      }
      return;
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: `No route ${path}: try /healthz, /readyz or /metrics` } });
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
