// Example worker for docker-compose.yml. It connects to the load balancer (III_URL), not to a
// node: when a node drains or dies the SDK reconnects through the balancer to another one.
//
//   curl http://127.0.0.1:3111/hello/Ada   ->  {"message":"Hello, Ada!","greeted":1,"node":...}
//
// The greeting count lives in the cluster's state module (Redis), so it is shared by every
// worker replica (`docker compose up --scale worker=3`) whichever node serves the request.
//
// With docker-compose.tls.yml, III_URL is wss://lb:49134 and NODE_EXTRA_CA_CERTS names the CA that
// signed the nodes' certificate: Node adds it to its trust store at start, the SDK needs nothing else.
const os = require('node:os');
const { registerWorker } = require('iii-sdk');

const url = process.env.III_URL ?? 'ws://127.0.0.1:49134';
const token = process.env.III_WORKER_TOKEN;
if (!token) {
  console.error('III_WORKER_TOKEN is not set: the engine refuses workers without its token (401)');
  process.exit(1);
}
const iii = registerWorker(url, {
  workerName: `compose-worker-${os.hostname()}`,
  // The token goes in a header, not in the URL (`?token=`), where access logs would keep it.
  headers: { Authorization: `Bearer ${token}` },
  // The SDK opens its telemetry socket (/otel) without these headers, so it would be refused;
  // this example sends no telemetry. (`?token=` in III_URL would cover both sockets.)
  otel: { enabled: false },
  enableMetricsReporting: false,
});

iii.registerFunction(
  'greeter::hello',
  async (req) => {
    const name = req.path_params?.name ?? 'world';
    const { new_value: counter } = await iii.trigger({
      function_id: 'state::update',
      payload: { scope: 'greetings', key: name, ops: [{ type: 'increment', path: 'count', by: 1 }] },
    });
    return { status_code: 200, body: { message: `Hello, ${name}!`, greeted: counter.count, worker: os.hostname() } };
  },
  { description: 'Greets someone by name and counts the greetings across the cluster' },
);
iii.registerTrigger({
  type: 'http',
  function_id: 'greeter::hello',
  config: { api_path: '/hello/:name', http_method: 'GET' },
});

console.log(`compose worker ${os.hostname()} serving GET /hello/:name via ${url}`);

// docker stop sends SIGTERM: leave the engine cleanly so no call is routed here any more.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    iii.shutdown().finally(() => process.exit(0));
  });
}
