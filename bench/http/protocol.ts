/** IPC messages and shared constants of the HTTP trigger suite (runner <-> children). */

export type ServerKind = 'engine' | 'relay';

export interface ServerReady {
  type: 'ready';
  /** WebSocket port the worker connects to. */
  wsPort: number;
  /** HTTP port autocannon and the latency client hit. */
  httpPort: number;
}

/** Asked of the engine server: how many http routes it serves now. */
export interface RouteCount {
  type: 'route-count';
  count: number;
}

export interface WorkerReady {
  type: 'ready';
}

/** Runner -> worker: make sure `count` routes are bound (they are only ever added). */
export interface BindRoutes {
  type: 'bind-routes';
  count: number;
}

export interface RoutesSent {
  type: 'routes-sent';
  count: number;
}

export const HANDLER_FUNCTION_ID = 'bench::http';

/** Route i is `GET /api/r<i>/:id`; every route calls the same handler. */
export function routePath(i: number): string {
  return `/api/r${i}/:id`;
}

/** A concrete URL path for route i. */
export function requestPath(i: number): string {
  return `/api/r${i}/42`;
}
