"""`srgan serve`: the app under uvicorn.

The socket is bound before anything else, so a port in use is one line, not a traceback; the model is
loaded before the server says where it listens; and a server reachable from other machines says so,
since it has no authentication.
"""

from __future__ import annotations

import logging
import socket

from srgan.api import SrganError
from srgan.serve.app import create_app
from srgan.serve.settings import ServeSettings

log = logging.getLogger("srgan.serve")


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free port), or a one-line `SrganError`."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise SrganError(f"cannot listen on {host}: {exc.strerror}") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise SrganError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def run(settings: ServeSettings) -> None:
    """Serve until interrupted (Ctrl-C stops it cleanly)."""
    import uvicorn

    sock = bind(settings.host, settings.port)
    try:
        app = create_app(settings)
        catalog, queue = app.state.catalog, app.state.queue
        default = catalog.models[catalog.default]
        url = url_of(sock)
        log.info("srgan serve: %s (page), %s/docs (API), model %s (x%d), %d worker(s), queue %d, "
                 "limits %g MB / %s pixels / %g s", url, url, default.name, default.scale, queue.workers,
                 queue.capacity - queue.workers, settings.max_upload_mb, f"{settings.max_pixels:,d}", settings.timeout)
        if not settings.loopback:
            log.warning("listening on %s: reachable from other machines, and there is no authentication "
                        "(--host 127.0.0.1 keeps it to this machine)", settings.host)
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
