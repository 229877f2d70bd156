#!/usr/bin/env python3
"""A tiny app for the bindery quickstart, with nothing but the Python standard library.

- It subscribes to the `tick` input binding: bindery probes `OPTIONS /tick`, then POSTs each
  event to `/tick` with the event's metadata as headers. Every event is printed.
- `/echo` answers any call with what it received, so the `echo` output binding (bindings.http)
  has something to talk to.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 3000


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_OPTIONS(self):
        # Any status but 404 tells bindery "I subscribe to this binding".
        self._answer(200 if self.path in ("/tick", "/echo") else 404)

    def do_POST(self):
        body = self._body()
        if self.path == "/tick":
            print(f"app: event from binding 'tick' at {self.headers.get('readTimeUTC')}"
                  f" (traceparent {self.headers.get('traceparent')})", flush=True)
            self._answer(200)
        elif self.path.startswith("/echo"):
            self._echo(body)
        else:
            self._answer(404)

    def do_GET(self):
        self._echo(b"") if self.path.startswith("/echo") else self._answer(404)

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _echo(self, body):
        answer = {"method": self.command, "path": self.path, "body": body.decode("utf-8", "replace")}
        self._answer(200, json.dumps(answer).encode())

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"app: listening on 127.0.0.1:{PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), App).serve_forever()
