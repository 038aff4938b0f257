/**
 * Bench child: an iii-sdk worker serving `bench::http` (answers `{status_code: 200, body: {id}}`)
 * and binding it to `GET /api/r<i>/:id` routes on request. Against the relay the bindings are
 * simply ignored by the server.
 */
import { registerWorker } from 'iii-sdk';
import { serveParent, toParent } from '../lib/child';
import { HANDLER_FUNCTION_ID, routePath, type BindRoutes, type RoutesSent, type WorkerReady } from './protocol';

console.debug = () => undefined; // the SDK logs every (re)connect at debug level

const url = process.argv[2];
const worker = registerWorker(url, {
  workerName: 'bench-http',
  enableMetricsReporting: false,
  otel: { enabled: false },
});
worker.registerFunction(HANDLER_FUNCTION_ID, async (req: { path_params: { id: string } }) => ({
  status_code: 200,
  body: { id: req.path_params.id },
}));
let bound = 0;

serveParent(
  (message) => {
    if (message.type !== 'bind-routes') return;
    const { count } = message as BindRoutes;
    for (; bound < count; bound++)
      worker.registerTrigger({
        type: 'http',
        function_id: HANDLER_FUNCTION_ID,
        config: { api_path: routePath(bound), http_method: 'GET' },
      });
    toParent({ type: 'routes-sent', count: bound } satisfies RoutesSent);
  },
  () => worker.shutdown(),
);
toParent({ type: 'ready' } satisfies WorkerReady);
