"""Drive bindery's gRPC API with the official Python SDK (dapr[grpc]==1.19.0).

Expects bindery to run with these components:
  files  bindings.localstorage (empty rootPath)
  web    bindings.http, url pointing at a server that answers
         /echo with 200 and body "echo:<request body>", and /status/<code> with <code>

Environment: DAPR_HTTP_PORT, DAPR_GRPC_PORT (as the SDK reads them), DAPR_API_TOKEN when
bindery requires one (then wrong and missing tokens are checked too), BINDERY_APP_ID (the
expected --app-id). The last check calls Shutdown and waits for bindery to stop listening.

Prints one PASS/FAIL line per check and exits non-zero on any failure.
"""

import json
import os
import socket
import sys
import time

import grpc
from dapr.clients import DaprClient
from dapr.conf import settings

failures = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" -- {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        failures.append(name)


def all_metadata(err):
    """Initial and trailing metadata of a failed call as one dict (tonic sends trailers-only)."""
    md = {}
    for part in (err.initial_metadata() or (), err.trailing_metadata() or ()):
        for k, v in part:
            md[k.lower()] = v
    return md


def expect_error(name, call, code, message=None, contains=None):
    try:
        call()
    except grpc.RpcError as err:
        ok = err.code() == code
        detail = f"code={err.code()} details={err.details()!r}"
        if message is not None:
            ok = ok and err.details() == message
        if contains is not None:
            ok = ok and contains in (err.details() or "")
        check(name, ok, detail)
        return err
    check(name, False, "no error raised")
    return None


def main():
    app_id = os.environ.get("BINDERY_APP_ID", "sdk-python")
    token = os.environ.get("DAPR_API_TOKEN")

    with DaprClient() as d:
        # localstorage: create / get / list / delete
        r = d.invoke_binding("files", "create", data="hello world", binding_metadata={"fileName": "dir/a.txt"})
        check("localstorage create answers the file name", json.loads(r.data) == {"fileName": "dir/a.txt"}, repr(r.data))
        r = d.invoke_binding("files", "get", binding_metadata={"fileName": "dir/a.txt"})
        check("localstorage get returns the data", r.data == b"hello world", repr(r.data))

        blob = bytes(range(256))
        d.invoke_binding("files", "create", data=blob, binding_metadata={"fileName": "blob.bin"})
        r = d.invoke_binding("files", "get", binding_metadata={"fileName": "blob.bin"})
        check("gRPC data is passed verbatim (binary round trip)", r.data == blob, f"{len(r.data)} bytes")

        r = d.invoke_binding("files", "list")
        listed = json.loads(r.data)
        check(
            "localstorage list names both files",
            isinstance(listed, list)
            and any(p.endswith("/dir/a.txt") for p in listed)
            and any(p.endswith("/blob.bin") for p in listed),
            repr(listed),
        )

        r = d.invoke_binding("files", "delete", binding_metadata={"fileName": "dir/a.txt"})
        check("localstorage delete answers nothing", r.data == b"", repr(r.data))
        expect_error(
            "get after delete fails with INTERNAL",
            lambda: d.invoke_binding("files", "get", binding_metadata={"fileName": "dir/a.txt"}),
            grpc.StatusCode.INTERNAL,
            contains="file not found",
        )

        # http binding: data, response metadata and its headers
        r = d.invoke_binding("web", "post", data=b"ping", binding_metadata={"path": "/echo"})
        check("http binding returns the response body", r.data == b"echo:ping", repr(r.data))
        check("http binding returns statusCode metadata", r.binding_metadata.get("statusCode") == "200", repr(r.binding_metadata))
        # The SDK gives headers as {key: [values]}.
        headers = {k.lower(): v[-1] for k, v in (r.headers or {}).items()}
        check("response metadata also arrives as metadata.* headers", headers.get("metadata.statuscode") == "200", repr(headers))

        # error paths
        err = expect_error(
            "binding failure is INTERNAL with the binding's message",
            lambda: d.invoke_binding("web", "get", binding_metadata={"path": "/status/503"}),
            grpc.StatusCode.INTERNAL,
            contains="error invoking output binding web: ",
        )
        if err is not None:
            check("binding failure message names the status", "503" in (err.details() or ""), err.details())
            md = all_metadata(err)
            check("binding failure carries metadata.statuscode", md.get("metadata.statuscode") == "503", repr(md))
        expect_error(
            "unknown binding",
            lambda: d.invoke_binding("nope", "create", data=b"x"),
            grpc.StatusCode.INTERNAL,
            message="error invoking output binding nope: couldn't find output binding nope",
        )
        expect_error(
            "unsupported operation lists the supported ones",
            lambda: d.invoke_binding("files", "explode", data=b"x"),
            grpc.StatusCode.INTERNAL,
            message="error invoking output binding files: binding files does not support operation explode. "
            "supported operations:create get list delete",
        )

        # metadata
        m = d.get_metadata()
        check("get_metadata application_id", m.application_id == app_id, m.application_id)
        comps = {c.name: c for c in m.registered_components}
        check(
            "get_metadata lists the components",
            "files" in comps and comps["files"].type == "bindings.localstorage" and "OUTPUT_BINDING" in comps["files"].capabilities
            and "web" in comps and comps["web"].type == "bindings.http",
            repr(m.registered_components),
        )
        check("get_metadata extended has daprRuntimeVersion", "daprRuntimeVersion" in m.extended_metadata, repr(m.extended_metadata))
        d.set_metadata("team", "blue")
        m = d.get_metadata()
        check("set_metadata shows in get_metadata", m.extended_metadata.get("team") == "blue", repr(m.extended_metadata))

    # API token
    if token:
        for label, bad in (("wrong", "not-the-token"), ("missing", None)):
            settings.DAPR_API_TOKEN = bad
            with DaprClient() as bad_client:
                expect_error(
                    f"{label} api token is UNAUTHENTICATED",
                    lambda: bad_client.invoke_binding("files", "list"),
                    grpc.StatusCode.UNAUTHENTICATED,
                    message="Unauthorized",
                )
        settings.DAPR_API_TOKEN = token

    # shutdown last
    with DaprClient() as d:
        d.shutdown()
    port = int(os.environ.get("DAPR_GRPC_PORT", "50001"))
    deadline = time.monotonic() + 20
    stopped = False
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(0.1)
        except OSError:
            stopped = True
            break
    check("shutdown stops the sidecar", stopped)

    print(f"{'OK' if not failures else 'FAILED'}: python client, {len(failures)} failure(s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
