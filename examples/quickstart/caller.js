// Worker A: calls `greeter::hello` through the engine, prints the answer and exits.
const { registerWorker } = require('iii-sdk');

const iii = registerWorker(process.env.III_URL ?? 'ws://127.0.0.1:49134', { workerName: 'caller' });

async function main() {
  const answer = await iii.trigger({ function_id: 'greeter::hello', payload: { name: process.argv[2] ?? 'world' } });
  console.log(answer.message);
  const { functions } = await iii.trigger({ function_id: 'engine::functions::list', payload: {} });
  console.log('functions on the engine:', functions.map((f) => f.function_id).join(', '));
  await iii.shutdown();
}

main().catch(async (err) => {
  console.error(err);
  await iii.shutdown();
  process.exitCode = 1;
});
