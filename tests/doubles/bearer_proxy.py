"""A reverse proxy in front of a test Prometheus that demands a bearer token, as an
authenticating proxy in front of a production Prometheus does (Prometheus itself checks only
basic auth). It counts what it let through and what it refused, by whether a token came."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


@dataclass
class Counts:
    allowed: int = 0
    wrong_token: int = 0
    no_token: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class BearerProxy:
    def __init__(self, upstream: str, token: str) -> None:
        self.upstream, self.token = upstream.rstrip("/"), token
        self.counts = Counts()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                got = self.headers.get("Authorization")
                with proxy.counts.lock:
                    if got == f"Bearer {proxy.token}":
                        proxy.counts.allowed += 1
                        allowed = True
                    else:
                        allowed = False
                        if got:
                            proxy.counts.wrong_token += 1
                        else:
                            proxy.counts.no_token += 1
                if not allowed:
                    self.send_response(401)
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                resp = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10
                )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = _forward

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> BearerProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
