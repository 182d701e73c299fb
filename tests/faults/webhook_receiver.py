"""A JSON webhook receiver on loopback, for what the notify plugin posts in fault tests."""

from __future__ import annotations

import json
import threading


class Webhook:
    """A JSON webhook receiver on loopback: what the notify plugin posts."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        posts = self.posts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def failures(self) -> list[tuple[str, int]]:
        return [(p.get("action"), p.get("exit_code")) for p in self.posts if not p.get("ok")]
