"""The artefact folder over HTTP, so the links in the UI's materializations open: a browser refuses ``file://``
links from an http page ("Not allowed to load local resource"), so `kinetics ui` serves the folder beside
the webserver. Read-only (GET and HEAD), on the loopback interface only, folders listed."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost"}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # the UI's console shows the webserver, not each file
        pass


def loopback_address(url: str) -> tuple[str, int]:
    """``url``'s host and port, refusing anything but a loopback http address."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or not parts.port:
        raise ValueError(f"files URL {url!r} must be http://127.0.0.1:PORT (the files are served on loopback only)")
    return "127.0.0.1", parts.port


@contextmanager
def serving_files(root: Path, url: str) -> Iterator[str]:
    """``root`` served at ``url`` in a background thread until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(loopback_address(url), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="files-server", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
