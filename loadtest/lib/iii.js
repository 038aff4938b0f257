/**
 * The iii v0.22 worker protocol spoken raw from k6 (docs/PROTOCOL.md): one JSON object per text
 * frame, `workerregistered` first, `invokefunction` / `invocationresult` correlated by a UUID.
 */
import { WebSocket } from 'k6/websockets';

/** A random UUID v4 (the engine requires UUID invocation ids). */
export function uuid() {
  const hex = '0123456789abcdef';
  let out = '';
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) out += '-';
    else if (i === 14) out += '4';
    else if (i === 19) out += hex[8 + Math.floor(Math.random() * 4)];
    else out += hex[Math.floor(Math.random() * 16)];
  }
  return out;
}

/** Milliseconds. k6 1.8 has no `performance.now()`, so script-side timings resolve to 1 ms. */
export function now() {
  return Date.now();
}

/**
 * A worker connection. `handlers.registered()` runs once the engine has sent `workerregistered`;
 * `handlers.invoke(message)` gets each `invokefunction` (return a value to answer it);
 * `handlers.result(message)` gets each `invocationresult` for a call made with `call`.
 */
export function connectWorker(url, handlers) {
  const socket = new WebSocket(url);
  const worker = {
    socket,
    send(message) {
      socket.send(JSON.stringify(message));
    },
    registerFunction(id) {
      worker.send({ type: 'registerfunction', id });
    },
    /** Sends an `invokefunction` with a fresh id and returns that id. */
    call(functionId, data, action) {
      const invocationId = uuid();
      const message = { type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data };
      if (action !== undefined) message.action = action;
      worker.send(message);
      return invocationId;
    },
    close() {
      socket.close();
    },
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'workerregistered') {
      if (handlers.registered) handlers.registered(message);
    } else if (message.type === 'invokefunction') {
      const answer = handlers.invoke ? handlers.invoke(message) : undefined;
      worker.send({
        type: 'invocationresult',
        invocation_id: message.invocation_id,
        function_id: message.function_id,
        result: answer,
      });
    } else if (message.type === 'invocationresult') {
      if (handlers.result) handlers.result(message);
    }
  };
  socket.onerror = (event) => {
    if (handlers.error) handlers.error(event);
  };
  return worker;
}
