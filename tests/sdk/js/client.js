// Drive bindery's HTTP and gRPC APIs with the official JS SDK (@dapr/dapr 3.18.0).
//
// Expects bindery with the components `files` (bindings.localstorage) and `web` (bindings.http,
// url pointing at a server that answers /echo with 200 and body "echo:<request body>", and
// /status/<code> with <code>).
//
//   NODE_PATH=.test-env/js/node_modules DAPR_HTTP_PORT=3500 DAPR_GRPC_PORT=50001 \
//     node tests/sdk/js/client.js
//
// Prints one PASS/FAIL line per check; exits non-zero on any failure.
"use strict";

const { DaprClient, CommunicationProtocolEnum, LogLevel } = require("@dapr/dapr");

const failures = [];
function check(name, ok, detail) {
  console.log(`${ok ? "PASS" : "FAIL"}: ${name}${!ok && detail !== undefined ? ` -- ${detail}` : ""}`);
  if (!ok) failures.push(name);
}
const show = (v) => {
  if (v instanceof Uint8Array) return `bytes(${Buffer.from(v).toString()})`;
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
};
const text = (bytes) => Buffer.from(bytes ?? []).toString();

// The SDK's HTTP client throws Error(JSON.stringify({error, error_msg, status})); the gRPC
// client throws a ConnectError with a numeric `code` and `rawMessage`.
async function expectError(name, call, expected) {
  try {
    const r = await call();
    check(name, false, `no error, got ${show(r)}`);
    return;
  } catch (err) {
    if (expected.http) {
      let parsed;
      try {
        parsed = JSON.parse(err.message);
      } catch (e) {
        check(name, false, `not an HTTP error: ${err}`);
        return;
      }
      let body = {};
      try {
        body = JSON.parse(parsed.error_msg);
      } catch (e) {
        // keep {}
      }
      const ok =
        parsed.status === expected.status &&
        body.errorCode === expected.errorCode &&
        (expected.message === undefined || body.message === expected.message) &&
        (expected.contains === undefined || String(body.message).includes(expected.contains));
      check(name, ok, `status=${parsed.status} body=${parsed.error_msg}`);
    } else {
      const msg = err.rawMessage ?? err.message;
      const ok =
        err.code === expected.code &&
        (expected.message === undefined || msg === expected.message) &&
        (expected.contains === undefined || String(msg).includes(expected.contains));
      check(name, ok, `code=${err.code} message=${msg}`);
    }
  }
}

async function overHttp(appId) {
  const c = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: process.env.DAPR_HTTP_PORT ?? "3500",
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    logger: { level: LogLevel.Error },
  });
  const p = "http: ";
  let r = await c.binding.send("files", "create", "hello over http", { fileName: "js/http.txt" });
  check(p + "localstorage create answers the file name", r && r.fileName === "js/http.txt", show(r));
  r = await c.binding.send("files", "get", undefined, { fileName: "js/http.txt" });
  check(p + "a JSON string is stored unquoted", r === "hello over http", show(r));
  await c.binding.send("files", "create", { a: 1, list: [true, null] }, { fileName: "js/obj.json" });
  r = await c.binding.send("files", "get", undefined, { fileName: "js/obj.json" });
  check(p + "a JSON object round-trips", show(r) === show({ a: 1, list: [true, null] }), show(r));
  r = await c.binding.send("files", "list", undefined, {});
  check(
    p + "list names the files",
    Array.isArray(r) && r.some((f) => f.endsWith("/js/http.txt")) && r.some((f) => f.endsWith("/js/obj.json")),
    show(r),
  );
  r = await c.binding.send("files", "delete", undefined, { fileName: "js/obj.json" });
  check(p + "delete answers nothing", r === "" || r === undefined, show(r));

  r = await c.binding.send("web", "post", "ping", { path: "/echo" });
  // Over HTTP Dapr hands the binding the JSON text of `data`: the string keeps its quotes.
  check(p + "http binding gets the JSON text of data", r === 'echo:"ping"', show(r));

  await expectError(p + "unknown binding", () => c.binding.send("nope", "create", "x"), {
    http: true,
    status: 500,
    errorCode: "ERR_INVOKE_OUTPUT_BINDING",
    message: "error invoking output binding nope: couldn't find output binding nope",
  });
  await expectError(p + "unsupported operation", () => c.binding.send("files", "explode", "x"), {
    http: true,
    status: 500,
    errorCode: "ERR_INVOKE_OUTPUT_BINDING",
    message:
      "error invoking output binding files: binding files does not support operation explode. supported operations:create get list delete",
  });
  await expectError(p + "binding failure", () => c.binding.send("web", "get", undefined, { path: "/status/503" }), {
    http: true,
    status: 500,
    errorCode: "ERR_INVOKE_OUTPUT_BINDING",
    contains: "503",
  });

  const m = await c.metadata.get();
  check(p + "metadata id", m && m.id === appId, show(m && m.id));
  check(
    p + "metadata lists the bindings",
    m && Array.isArray(m.components) && ["files", "web"].every((n) => m.components.some((x) => x.name === n)),
    show(m && m.components),
  );
  await c.metadata.set("js-http", "yes");
  const m2 = await c.metadata.get();
  check(p + "metadata set shows in get", m2.extended && m2.extended["js-http"] === "yes", show(m2.extended));
  await c.stop();
}

async function overGrpc(appId) {
  const c = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: process.env.DAPR_GRPC_PORT ?? "50001",
    communicationProtocol: CommunicationProtocolEnum.GRPC,
    logger: { level: LogLevel.Error },
  });
  const p = "grpc: ";
  let r = await c.binding.send("files", "create", "hello over grpc", { fileName: "js/grpc.txt" });
  check(p + "localstorage create answers the file name", text(r.data) === '{"fileName":"js/grpc.txt"}', show(r));
  r = await c.binding.send("files", "get", undefined, { fileName: "js/grpc.txt" });
  check(p + "get returns the bytes", text(r.data) === "hello over grpc", show(r));
  const blob = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
  await c.binding.send("files", "create", blob, { fileName: "js/blob.bin" });
  r = await c.binding.send("files", "get", undefined, { fileName: "js/blob.bin" });
  check(p + "binary data is passed verbatim", Buffer.compare(Buffer.from(r.data), blob) === 0, show(r.data));
  r = await c.binding.send("files", "delete", undefined, { fileName: "js/blob.bin" });
  check(p + "delete answers no data", (r.data ?? new Uint8Array()).length === 0, show(r));

  r = await c.binding.send("web", "post", "ping", { path: "/echo" });
  check(p + "http binding gets data verbatim", text(r.data) === "echo:ping", show(r));
  check(p + "http binding statusCode metadata", r.metadata && r.metadata.statusCode === "200", show(r.metadata));

  const INTERNAL = 13;
  await expectError(p + "unknown binding", () => c.binding.send("nope", "create", "x"), {
    code: INTERNAL,
    message: "error invoking output binding nope: couldn't find output binding nope",
  });
  await expectError(p + "unsupported operation", () => c.binding.send("files", "explode", "x"), {
    code: INTERNAL,
    message:
      "error invoking output binding files: binding files does not support operation explode. supported operations:create get list delete",
  });
  await expectError(p + "binding failure", () => c.binding.send("web", "get", undefined, { path: "/status/503" }), {
    code: INTERNAL,
    contains: "503",
  });

  const m = await c.metadata.get();
  check(p + "metadata id", m.id === appId, show(m.id));
  const files = m.components.find((x) => x.name === "files");
  check(
    p + "metadata lists files with its capability",
    files && files.type === "bindings.localstorage" && files.capabilities.includes("OUTPUT_BINDING"),
    show(m.components),
  );
  await c.metadata.set("js-grpc", "yes");
  const m2 = await c.metadata.get();
  check(p + "metadata set shows in get", m2.extended["js-grpc"] === "yes", show(m2.extended));
  await c.stop();
}

(async () => {
  const appId = process.env.BINDERY_APP_ID ?? "sdk-js";
  try {
    await overHttp(appId);
    await overGrpc(appId);
  } catch (err) {
    check("no unexpected exception", false, err && err.stack ? err.stack : String(err));
  }
  console.log(`${failures.length ? "FAILED" : "OK"}: js client, ${failures.length} failure(s)`);
  process.exit(failures.length ? 1 : 0);
})();
