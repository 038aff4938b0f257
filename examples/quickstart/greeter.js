// Worker B: serves `greeter::hello`. Run it after the engine: node examples/quickstart/greeter.js
const { registerWorker } = require('iii-sdk');

const iii = registerWorker(process.env.III_URL ?? 'ws://127.0.0.1:49134', { workerName: 'greeter' });

iii.registerFunction('greeter::hello', async (data) => ({ message: `Hello, ${data.name}!` }), {
  description: 'Greets someone by name',
});
console.log('greeter ready: serving greeter::hello');
