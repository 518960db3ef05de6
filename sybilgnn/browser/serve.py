"""A tiny local web server for the guide and the style, because Neo4j's own HTTP server
serves only the Browser app and the APIs, not extra files.

Browser fetches guides and styles from the page with ``fetch`` (cross-origin: another port)
and adds ``cache-control``/``pragma`` headers, so the server answers CORS preflights too.
It binds to 127.0.0.1 only and serves two fixed documents from memory, never files.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from sybilgnn.browser.guide import GUIDE_FILE, STYLE_FILE, render_guide_html
from sybilgnn.browser.style import style_for
from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import GraphSchema

__all__ = ["GuideServer", "DEFAULT_GUIDE_PORT"]

DEFAULT_GUIDE_PORT = 7480


class _Handler(BaseHTTPRequestHandler):
    server: _GuideHTTPServer

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Access-Control-Max-Age", "600")

    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server naming)
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        documents = self.server.documents
        key = GUIDE_FILE if path in ("/", "") else path.lstrip("/")
        if key not in documents:
            self.send_response(HTTPStatus.NOT_FOUND)
            self._cors()
            self.end_headers()
            return
        content_type, body = documents[key]
        self.send_response(HTTPStatus.OK)
        self._cors()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


class _GuideHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    documents: dict[str, tuple[str, bytes]]
    verbose: bool


class GuideServer:
    """Serve ``/sybilgnn.html`` and ``/style.grass`` of ``schema``'s graph on 127.0.0.1; use
    as a context manager.

    ``port=0`` picks a free port (tests); the CLI default is 7480.
    """

    def __init__(self, port: int = DEFAULT_GUIDE_PORT, *, schema: GraphSchema,
                 host: str = "127.0.0.1",
                 url_host: str = "localhost", verbose: bool = False) -> None:
        try:
            self._httpd = _GuideHTTPServer((host, port), _Handler)
        except OSError as exc:
            raise SybilgnnError(f"cannot serve the guide on {host}:{port} ({exc.strerror}); "
                                f"choose another port with --port") from None
        self._httpd.verbose = verbose
        self.host = host
        # URLs say "localhost": it is on every Neo4j server's default allowlist, and Browser
        # checks the allowlist before it has loaded the server's own setting after login.
        self.url_host = url_host
        self.port = int(self._httpd.server_address[1])
        self._httpd.documents = {
            GUIDE_FILE: ("text/html; charset=utf-8",
                         render_guide_html(self.base_url, schema=schema).encode("utf-8")),
            STYLE_FILE: ("text/plain; charset=utf-8", style_for(schema).encode("utf-8")),
        }
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.url_host}:{self.port}"

    @property
    def guide_url(self) -> str:
        return f"{self.base_url}/{GUIDE_FILE}"

    @property
    def style_url(self) -> str:
        return f"{self.base_url}/{STYLE_FILE}"

    def start(self) -> GuideServer:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            name="sybilgnn-guide", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> GuideServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
