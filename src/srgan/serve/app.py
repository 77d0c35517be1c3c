"""The FastAPI app: the page, the upscale API, health, metrics and offline docs, over `srgan.api`.

`create_app(settings)` builds everything one server holds: ONE `ModelCache` (the default model
loaded at once), the base `UpscaleOptions` (device, precision), the bounded inference queue and the
metrics. A request to `/api/upscale` reads its upload into memory under the size cap (413), the body
deadline and the minimum upload rate (408) and turns the form into `UpscaleOptions` (422); only
then does it take a queue slot (429 when none is free), so clients that trickle their bytes hold no
slot, and it runs decode (the header read once, against --max-pixels: 415 / 422) -> upscale ->
encode on an inference thread (504 after `timeout`). Every refusal is JSON: {"error": "...",
"limit": {...}}. A client that hangs up mid-upload is counted as status 499, reason
`client_closed`, and logged in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from srgan import __version__
from srgan.api import ModelCache, UpscaleOptions
from srgan.imaging.formats import writable_formats
from srgan.serve.docs import add_offline_docs
from srgan.serve.errors import ServeError
from srgan.serve.form import FIELD_HELP, format_options, request_options
from srgan.serve.inference_queue import InferenceQueue
from srgan.serve.job import content_disposition, upscale_upload
from srgan.serve.metrics import Metrics
from srgan.serve.models import ModelCatalog
from srgan.serve.settings import ServeSettings
from srgan.serve.upload import FILE_FIELD, BodyLimits, ClientGone, read_upload

log = logging.getLogger("srgan.serve")

# the page may talk to this server only: nothing from elsewhere, even if the HTML were altered
PAGE_POLICY = ("default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; "
               "script-src 'unsafe-inline'; connect-src 'self' blob:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")

_UPSCALE_DOC = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [FILE_FIELD],
        "properties": {FILE_FIELD: {"type": "string", "contentMediaType": "application/octet-stream",
                                    "description": "the image (PNG, JPEG, WebP, TIFF, BMP, GIF, ...)"},
                       **{name: {"type": "string", "description": text} for name, text in FIELD_HELP.items()}},
    }}}},
    "responses": {
        "200": {"description": "The upscaled image. Headers: X-Srgan-Model, X-Srgan-Scale, X-Srgan-Seconds "
                               "(decode + upscale + encode), X-Srgan-Size (WxH).",
                "content": {media: {"schema": {"type": "string", "contentMediaType": media}}
                            for media in dict.fromkeys(row.media_type for row in writable_formats())}},
        **{str(code): {"description": text, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"error": {"type": "string"}, "limit": {"type": "object"}}}}}}
           for code, text in ((400, "malformed multipart body"),
                              (408, "upload not received within --upload-timeout, or slower than --min-upload-kbps"),
                              (413, "upload over --max-upload-mb"), (415, "not multipart, or not an image"),
                              (422, "over --max-pixels, corrupt image, or a wrong option"),
                              (429, "queue full: retry after the Retry-After header's seconds"),
                              (504, "not done within --timeout"))},
    },
}


def create_app(settings: ServeSettings | None = None, *, cache: ModelCache | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    cache = cache if cache is not None else ModelCache()
    base = UpscaleOptions(device=settings.device, precision=settings.precision, backend=settings.backend)
    catalog = ModelCatalog(settings.model, base, cache)
    queue = InferenceQueue(settings.workers, settings.queue)
    metrics = Metrics(queue)
    limits = BodyLimits(settings.max_upload_bytes, settings.upload_timeout, settings.min_upload_kbps * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        queue.shutdown()

    app = FastAPI(title="srgan", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Single-image super-resolution with the SRGAN family. The page is at `/`; "
                              "`POST /api/upscale` takes an image and answers the upscaled one.")
    app.state.settings, app.state.queue, app.state.metrics, app.state.catalog = settings, queue, metrics, catalog
    add_offline_docs(app)
    _add_reading_routes(app)

    @app.post("/api/upscale", summary="Upscale one image", openapi_extra=_UPSCALE_DOC, response_class=Response)
    async def upscale(request: Request) -> Response:
        start = time.perf_counter()
        reason = None
        try:
            response = await _upscale(request)
        except ServeError as exc:
            reason, response = exc.reason, JSONResponse(exc.body(), exc.status, headers=exc.headers)
        except ClientGone:  # nobody to answer; nginx's 499 "client closed request" in the counts
            log.info("client %s closed the connection mid-upload", request.client.host if request.client else "?")
            reason, response = "client_closed", Response(status_code=499)
        except Exception:  # a bug: logged with its traceback, the server goes on
            log.exception("upscale failed")
            reason, response = "internal", JSONResponse({"error": "internal error (see the server log)"}, 500)
        metrics.observe(response.status_code, time.perf_counter() - start, reason)
        return response

    async def _upscale(request: Request) -> Response:
        upload = await read_upload(request, limits)
        options = request_options(upload.fields, base, catalog)
        slot = queue.take()  # only now: a slow upload holds no slot
        try:
            result = await slot.run(upscale_upload, upload.data, upload.filename, options, cache,
                                    settings.max_pixels, timeout=settings.timeout)
        finally:
            slot.close()
        model = quote(upload.fields.get("model", "").strip() or catalog.default, safe=" ._-+()")  # headers are ASCII
        log.info("%s -> %dx%d with %s in %.2f s", upload.filename, result.width, result.height, model, result.seconds)
        return Response(result.body, media_type=result.media_type, headers={
            "Content-Disposition": content_disposition(result.filename), "X-Srgan-Model": model,
            "X-Srgan-Scale": f"{result.scale:g}", "X-Srgan-Seconds": f"{result.seconds:.3f}",
            "X-Srgan-Size": f"{result.width}x{result.height}"})

    return app


def _add_reading_routes(app: FastAPI) -> None:
    """The page (its format list from the format table), health, models and metrics: the routes that
    only read the server's state."""
    settings, queue, metrics, catalog = app.state.settings, app.state.queue, app.state.metrics, app.state.catalog
    page = files("srgan.serve").joinpath("static/index.html").read_bytes().replace(
        b"<!--formats-->", format_options().encode())

    @app.exception_handler(ServeError)
    async def refused(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"})

    @app.get("/healthz", summary="Liveness, queue and limits (answers while images are upscaled)")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__,
                "queue": {"waiting": queue.waiting, "running": queue.running, "capacity": queue.capacity,
                          "workers": queue.workers},
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_pixels": settings.max_pixels,
                           "timeout": settings.timeout}}

    @app.get("/api/models", summary="The models this server offers, and its default")
    def models() -> dict:
        return catalog.describe()

    @app.get("/metrics", summary="Prometheus metrics: requests, errors, queue, latency")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)
