"""The HTTP API and the pages: ``create_app(settings, engine=None)``; ``fitroom serve`` runs it with uvicorn.

Every error is a JSON body ``{"error": {"code": ..., "message": ...}}`` with a 4xx status: bad uploads, unknown
ids, a full queue (429 + Retry-After), too many requests from one address (429), a body over the size limit (413).
Logs carry ids and error types, never image bytes or uploaded file names.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fitroom.service.api import router as api_router
from fitroom.service.core import FittingRoom, PhotoRefused, QueueFull, ServiceError
from fitroom.service.logs import REQUEST_ID, request_id
from fitroom.service.pages import router as pages_router
from fitroom.service.settings import Settings

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


class RateLimiter:
    """At most ``per_minute`` requests per client address in any 60-second window (the API's POST and DELETE)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.calls: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, client: str) -> float:
        """0 when allowed, else the seconds until the next request would be."""
        now = time.monotonic()
        with self.lock:
            calls = self.calls[client]
            while calls and now - calls[0] > 60:
                calls.popleft()
            if len(calls) >= self.per_minute:
                return 60 - (now - calls[0])
            calls.append(now)
            return 0.0


class RootPathMiddleware:
    """Serve under a reverse proxy's path prefix (``FITROOM_ROOT_PATH``), whichever server runs the app: the
    prefix becomes the request's ``root_path``, from which the pages and the API's URLs start; a request whose
    path still carries the prefix (a proxy that does not strip it) is routed as well."""

    def __init__(self, app, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope, root_path=self.root_path)
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, engine=None, preprocessor=None) -> FastAPI:
    """The service's ASGI app: the API (:mod:`fitroom.service.api`), the pages (:mod:`fitroom.service.pages`),
    limits, CORS, proxy and root-path handling, and errors as JSON. The fitting room (engine, models, database)
    starts with the app (``lifespan``); ``engine`` and ``preprocessor`` may be given (tests inject small ones)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        room = await run_in_threadpool(FittingRoom, settings, engine, preprocessor)
        app.state.room = room
        if not settings.api_key:
            logger.warning("FITROOM_API_KEY is not set: adding or deleting garments and reading the statistics are "
                           "refused until it is")
        stop = asyncio.Event()

        async def retention() -> None:  # hourly, and once at start-up
            while not stop.is_set():
                await run_in_threadpool(room.expire)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=3600)
                except asyncio.TimeoutError:
                    pass

        task = asyncio.create_task(retention())
        logger.info("fitting room ready: engine %s, data in %s", room.model_version, settings.data_dir)
        yield
        stop.set()
        await task
        await run_in_threadpool(room.close)

    app = FastAPI(title="fitroom", version="1", lifespan=lifespan,
                  description="Virtual fitting room: photo guidance, garments, try-ons, ratings.")
    app.state.settings = settings
    app.state.room = None
    limiter = RateLimiter(settings.rate_limit_per_minute)

    @app.middleware("http")
    async def limits(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes * 2 + 65536:
            return _error(413, "too_large", "the request body is too large")
        # uploads and changes are limited; reading (the page polls a try-on's status) is not
        if "/v1/" in request.url.path and request.method not in ("GET", "HEAD", "OPTIONS"):
            wait = limiter.allow(request.client.host if request.client else "unknown")
            if wait:
                return _error(429, "rate_limited", "too many requests; slow down",
                              headers={"Retry-After": str(int(wait) + 1)})
        return await call_next(request)

    @app.middleware("http")
    async def request_ids(request: Request, call_next):  # outside the limits, so refusals carry an id too
        rid = request_id(request.headers.get("x-request-id"))
        token = REQUEST_ID.set(rid)
        try:
            response = await call_next(request)
        finally:
            REQUEST_ID.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    # added last, so they run first (Starlette wraps each new middleware around the ones before)
    if settings.trusted_proxies:
        # behind a trusted reverse proxy the client is the address it forwards (rate limit, access log)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.root_path.strip("/"):
        app.add_middleware(RootPathMiddleware, root_path="/" + settings.root_path.strip("/"))
    if settings.origins():
        # a shop's own pages may call the API from their origin; the keys travel in the Authorization header
        app.add_middleware(CORSMiddleware, allow_origins=settings.origins(), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError):
        queue_full = isinstance(error, QueueFull)
        headers = {"Retry-After": str(request.app.state.room.retry_after())} if queue_full else None
        extra = {"guidance": error.report} if isinstance(error, PhotoRefused) else {}
        return _error(error.status, error.code, str(error), headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors())
        return _error(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return _error(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):  # a bug: logged, answered without details
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "an unexpected error occurred; it was logged")

    @app.get("/healthz", tags=["health"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def ready(request: Request):
        room = getattr(request.app.state, "room", None)
        if room is None:
            return _error(503, "starting", "the engine is loading")
        problem = await run_in_threadpool(room.unready)
        if problem:
            return _error(503, "not_ready", problem)
        return {"status": "ready", "engine": room.model_version, "schema": room.schema}

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics(request: Request):
        """Prometheus' text format: queue depth, workers, try-ons by outcome, try-on and check latency."""
        from fitroom.service.metrics import CONTENT_TYPE

        room = getattr(request.app.state, "room", None)
        if room is None:
            return _error(503, "starting", "the engine is loading")
        return Response(room.metrics.text(), media_type=CONTENT_TYPE)

    app.include_router(api_router)
    app.include_router(pages_router)

    return app
