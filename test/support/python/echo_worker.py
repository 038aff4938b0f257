"""A Python iii-sdk worker driven by test/integration/python-sdk.test.ts.

Usage: python echo_worker.py [ENGINE_WS_URL]   (or env III_URL)

Registers:
  py::echo  -> {"echo": <input>, "runtime": "python"}
  py::fail  -> raises RuntimeError("python worker failed on purpose: <reason>")

Prints on stdout, one line each:
  READY                      once both registrations have been handed to the SDK
  NODE_RESULT <json>         when III_PY_CALL_FUNCTION is set: the result of calling that
                             function once with III_PY_CALL_PAYLOAD (JSON, default {})
  NODE_ERROR <code> <msg>    ... or the error it failed with

Runs until stdin closes, or SIGTERM/SIGINT, then shuts the SDK down and exits 0.
"""

import json
import os
import signal
import sys
import threading

from iii import InitOptions, InvocationError, register_worker


def echo(data):
    return {"echo": data, "runtime": "python"}


def fail(data):
    reason = data.get("reason", "no reason") if isinstance(data, dict) else "no reason"
    raise RuntimeError(f"python worker failed on purpose: {reason}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("III_URL")
    if not url:
        sys.stderr.write("usage: echo_worker.py ENGINE_WS_URL (or set III_URL)\n")
        return 2

    stop = threading.Event()
    connected = threading.Event()

    def request_stop():
        stop.set()
        if not connected.is_set():
            # register_worker() blocks (up to 30 s, then retries in a non-daemon SDK thread):
            # nothing to shut down gracefully yet, so leave at once.
            os._exit(0)

    def on_signal(_signum, _frame):
        request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # os.read, not sys.stdin: a daemon thread parked inside the buffered reader makes
        # interpreter shutdown abort ("could not acquire lock for <stdin>").
        fd = sys.stdin.fileno()
        try:
            while os.read(fd, 4096):
                pass
        except Exception:
            pass
        request_stop()

    threading.Thread(target=watch_stdin, daemon=True).start()

    worker = register_worker(
        url,
        InitOptions(
            worker_name=os.environ.get("III_PY_WORKER_NAME", "py-echo"),
            worker_description="Python iii-sdk echo worker (test)",
            enable_metrics_reporting=False,
            otel={"enabled": False},
        ),
    )
    connected.set()
    try:
        worker.register_function("py::echo", echo, description="Echoes its input")
        worker.register_function("py::fail", fail, description="Always raises")
        say("READY")

        target = os.environ.get("III_PY_CALL_FUNCTION")
        if target:
            payload = json.loads(os.environ.get("III_PY_CALL_PAYLOAD") or "{}")
            try:
                result = worker.trigger({"function_id": target, "payload": payload, "timeout_ms": 10_000})
                say("NODE_RESULT " + json.dumps(result, sort_keys=True))
            except InvocationError as e:
                say(f"NODE_ERROR {e.code} {e.message}")

        while not stop.wait(0.2):
            pass
    finally:
        worker.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
