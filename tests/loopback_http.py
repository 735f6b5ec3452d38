"""A tiny HTTP server on loopback for tests that need a peer speaking a fixed protocol (an OAuth token
endpoint, a storage API that says 403, a package registry): one function answers every request."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: ``respond(request, body) -> (status, response body)``; ``request`` has ``.path`` and ``.headers``.
Respond = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, bytes]]


@contextmanager
def loopback_server(respond: Respond, content_type: str = "application/json") -> Iterator[str]:
    """Serves every request with ``respond`` on 127.0.0.1; yields the server's base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = respond(self, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
