// The iii-sdk logs every connect at debug level; keep test output to what matters.
console.debug = () => undefined;
