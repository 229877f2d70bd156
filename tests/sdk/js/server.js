// An input-binding app written with the official JS SDK (@dapr/dapr 3.18.0): DaprServer with
// binding.receive, over HTTP or gRPC.
//
//   NODE_PATH=.test-env/js/node_modules APP_PORT=6001 DAPR_HTTP_PORT=3500 DAPR_GRPC_PORT=50001 \
//     node tests/sdk/js/server.js grpc|http
//
// Start bindery with `--app-port $APP_PORT --app-protocol <same>` and a cron binding named
// $BINDING (default `ticker`). Waits for $EVENTS events (default 2) within $TIMEOUT seconds
// (default 30); exits non-zero otherwise.
"use strict";

const { DaprServer, CommunicationProtocolEnum, LogLevel } = require("@dapr/dapr");

const mode = process.argv[2];
if (mode !== "http" && mode !== "grpc") {
  console.error("usage: server.js http|grpc");
  process.exit(2);
}
const protocol = mode === "grpc" ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP;
const binding = process.env.BINDING ?? "ticker";
const wanted = Number(process.env.EVENTS ?? "2");
const timeoutMs = Number(process.env.TIMEOUT ?? "30") * 1000;

const failures = [];
function check(name, ok, detail) {
  console.log(`${ok ? "PASS" : "FAIL"}: ${name}${!ok && detail !== undefined ? ` -- ${detail}` : ""}`);
  if (!ok) failures.push(name);
}

(async () => {
  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: process.env.APP_PORT,
    communicationProtocol: protocol,
    clientOptions: {
      daprHost: "127.0.0.1",
      daprPort: mode === "grpc" ? process.env.DAPR_GRPC_PORT : process.env.DAPR_HTTP_PORT,
      communicationProtocol: protocol,
    },
    logger: { level: LogLevel.Error },
  });
  const events = [];
  let done;
  const enough = new Promise((resolve) => (done = resolve));
  await server.binding.receive(binding, async (data) => {
    events.push(data);
    console.log(`event ${events.length}: ${JSON.stringify(data)}`);
    if (events.length >= wanted) done(true);
  });
  try {
    await server.start();
    console.log(`${mode} app listening on 127.0.0.1:${process.env.APP_PORT}, sidecar reached`);
    check("server started and reached the sidecar", true);
  } catch (err) {
    check("server started and reached the sidecar", false, String(err));
  }
  const timer = new Promise((resolve) => setTimeout(() => resolve(false), timeoutMs));
  const got = await Promise.race([enough, timer]);
  check(`${mode}: received ${wanted} '${binding}' events within ${timeoutMs / 1000}s`, got, `got ${events.length}`);
  // The SDK's stop() waits for the sidecar to close its connection to the app; don't wait long.
  await Promise.race([server.stop().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000))]);
  console.log(`${failures.length ? "FAILED" : "OK"}: js ${mode} app, ${failures.length} failure(s)`);
  process.exit(failures.length ? 1 : 0);
})();
