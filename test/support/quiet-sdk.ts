// The iii-sdk logs every connect at debug level; keep test output to what matters.
console.debug = () => undefined;

// An unhandled rejection is a bug (in the engine it would crash a node): fail the run on one.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`Unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`);
  process.exitCode = 1;
  throw reason;
});
