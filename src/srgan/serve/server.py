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


def header_timeout_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol with a deadline for each request's headers: a connection that has not
    sent a whole request head `seconds` after it opened (or after its previous response) is closed.
    uvicorn has no such limit (its keep-alive timer stops at the first byte), so a client sending
    one header byte at a time (slowloris) would hold its connection forever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the request head is in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                log.info("closed a connection that sent no complete request head within %g s", seconds)
                self.transport.close()

    return HeaderTimeoutProtocol


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
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                                http=header_timeout_protocol(settings.header_timeout))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
