/**
 * The HTTP handler worker of the load tests: `lt::http::hello` on every node, bound to
 * `GET /lt/hello` (one binding; HTTP routes are served by every node of the cluster).
 */
const { announceReady, connectAll, waitCallable } = require('./common');

async function main() {
  const clients = connectAll('lt-http-handler');
  for (const client of clients) {
    client.registerFunction('lt::http::hello', async (req) => ({
      status_code: 200,
      body: { message: `hello ${(req && req.query_params && req.query_params.name) || 'world'}` },
    }));
  }
  clients[0].registerTrigger({
    type: 'http',
    function_id: 'lt::http::hello',
    config: { api_path: '/lt/hello', http_method: 'GET' },
  });
  await waitCallable(clients, 'lt::http::hello', { query_params: { name: 'probe' } });
  announceReady(clients);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
