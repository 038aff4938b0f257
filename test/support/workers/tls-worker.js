// An iii-sdk worker in its own process, connecting over wss://: the SDK's `ws` uses Node's default
// CA store, which reads NODE_EXTRA_CA_CERTS only at process start, so the test spawns this script
// with NODE_EXTRA_CA_CERTS=<test CA>. Argument: the engine's wss:// URL.
const { registerWorker } = require('iii-sdk');

console.debug = () => undefined;
const worker = registerWorker(process.argv[2], {
  workerName: 'tls-worker',
  enableMetricsReporting: false,
  otel: { enabled: false },
});

worker.registerFunction('tls::echo', async (data) => ({ echoed: data }));

worker.registerFunction('tls::hello', async () => ({ status_code: 200, body: { hello: 'over tls' } }));
worker.registerTrigger({ type: 'http', function_id: 'tls::hello', config: { api_path: '/hello', http_method: 'GET' } });

// Reads the request body through its data channel and streams the answer through the response
// channel: both channels are WebSockets the SDK opens at <engine wss URL>/ws/channels/...
worker.registerFunction('tls::upload', async (req) => {
  const body = await req.request_body.readAll();
  req.response.sendMessage(JSON.stringify({ type: 'set_headers', headers: { 'content-type': 'text/plain' } }));
  req.response.stream.write(Buffer.from(`received ${body.length} bytes: `));
  req.response.stream.end(body);
  return null;
});
worker.registerTrigger({
  type: 'http',
  function_id: 'tls::upload',
  config: { api_path: '/upload', http_method: 'POST' },
});

process.stdout.write('READY\n');
