"""An input-binding app written with the official Python SDK (dapr.ext.grpc.App).

Run it, then start bindery with `--app-protocol grpc --app-port $APP_PORT` and a cron binding
named $BINDING (default `ticker`). It waits for $EVENTS events (default 2) within $TIMEOUT
seconds (default 30), checks them, and exits non-zero on any mismatch. When $APP_API_TOKEN is
set, every event must carry it as `dapr-api-token` metadata.
"""

import os
import sys
import threading

from dapr.ext.grpc import App, BindingRequest

port = int(os.environ["APP_PORT"])
binding = os.environ.get("BINDING", "ticker")
wanted = int(os.environ.get("EVENTS", "2"))
timeout = float(os.environ.get("TIMEOUT", "30"))
token = os.environ.get("APP_API_TOKEN")

app = App()
events = []
enough = threading.Event()
lock = threading.Lock()


@app.binding(binding)
def on_event(req: BindingRequest):
    # The SDK gives the call metadata as {key: [values]}.
    call_md = {k: v[-1] for k, v in (req.metadata or {}).items()}
    with lock:
        events.append((req.data, dict(req.binding_metadata), call_md))
        print(f"event {len(events)}: data={req.data!r} metadata={dict(req.binding_metadata)}", flush=True)
        if len(events) >= wanted:
            enough.set()


server = threading.Thread(target=app.run, args=(port,), kwargs={"listen_address": "127.0.0.1"}, daemon=True)
server.start()
print(f"app listening on 127.0.0.1:{port}, waiting for {wanted} '{binding}' events", flush=True)

failures = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" -- {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        failures.append(name)


got = enough.wait(timeout)
app.stop()
check(f"received {wanted} events within {timeout:.0f}s", got, f"got {len(events)}")
for i, (data, md, call_md) in enumerate(events[:wanted], 1):
    check(f"event {i}: cron data is empty", data == b"", repr(data))
    check(f"event {i}: readTimeUTC and timeZone metadata", "readTimeUTC" in md and "timeZone" in md, repr(md))
    if token:
        check(f"event {i}: dapr-api-token metadata", call_md.get("dapr-api-token") == token, repr(call_md))

print(f"{'OK' if not failures else 'FAILED'}: python app, {len(failures)} failure(s)", flush=True)
sys.exit(1 if failures else 0)
