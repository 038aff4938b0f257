"""A Python iii-sdk 0.25 worker with a namespace, driven by test/integration/namespaces.test.ts.

Usage: python ns_worker.py URL WORKER_NAME NAMESPACE FUNCTION_ID TAG

Registers FUNCTION_ID in NAMESPACE (InitOptions.namespace), answering {"served_by": TAG, "input": <data>}.
Prints READY once registered; with III_PY_CALL set, then calls that function id (in its own
namespace, as the SDK resolves it) and prints CALL_RESULT <json> or CALL_ERROR <code> <message>.
Runs until stdin closes, then shuts the SDK down.
"""

import json
import os
import sys

from iii import InitOptions, InvocationError, register_worker


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    url, worker_name, namespace, function_id, tag = sys.argv[1:6]
    iii = register_worker(url, InitOptions(worker_name=worker_name, namespace=namespace))
    iii.register_function(function_id, lambda data: {"served_by": tag, "input": data})
    say("READY")
    call = os.environ.get("III_PY_CALL")
    if call:
        try:
            say("CALL_RESULT " + json.dumps(iii.trigger({"function_id": call, "payload": {"from": tag}})))
        except InvocationError as err:
            say(f"CALL_ERROR {err.code} {err}")
    sys.stdin.read()
    iii.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
