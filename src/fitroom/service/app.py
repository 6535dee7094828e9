"""The HTTP API and the pages: ``create_app(settings, engine=None)``; ``fitroom serve`` runs it with uvicorn.

Every error is a JSON body ``{"error": {"code": ..., "message": ...}}`` with a 4xx status: bad uploads, unknown
ids, a full queue (429 + Retry-After), too many requests from one address (429), a body over the size limit (413).
Logs carry ids and error types, never image bytes or uploaded file names.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import threading
from html import escape as html_escape
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from importlib import resources
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fitroom.labels import GarmentCategory, View
from fitroom.service.core import FittingRoom, PhotoRefused, QueueFull, ServiceError
from fitroom.service.settings import Settings

logger = logging.getLogger(__name__)


class Rating(BaseModel):
    rating: Literal["good", "bad"]
    reason: str | None = Field(None, max_length=500)


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


async def _read_upload(upload: UploadFile, room: FittingRoom) -> bytes:
    data = await upload.read(room.settings.max_upload_bytes + 1)
    if len(data) > room.settings.max_upload_bytes:
        raise ServiceError(f"the file is larger than {room.settings.max_upload_bytes / 1e6:.0f} MB", status=413,
                           code="too_large")
    return data


NONE = "'none'"
#: a garment's name: printable text without angle brackets, at most this long
MAX_NAME = 80
NAME_PATTERN = r"^[^\x00-\x1f\x7f<>]+$"


def content_security_policy(html: str) -> str:
    """A Content-Security-Policy for one of the service's pages: only the page's own inline scripts run (allowed
    by their SHA-256 hashes), nothing is loaded from elsewhere, no plug-ins, no ``<base>`` rewriting. Even if a
    user-supplied string reached the page as markup, a script it carried would not run."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                      for body in scripts)
    return (f"default-src 'self'; script-src {hashes or NONE}; style-src 'self' "
            "'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'")


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
    settings = settings or Settings.from_env()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        room = await run_in_threadpool(FittingRoom, settings, engine, preprocessor)
        state["room"] = room
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
    limiter = RateLimiter(settings.rate_limit_per_minute)

    def room() -> FittingRoom:
        if "room" not in state:
            raise ServiceError("the service is starting", status=503, code="starting")
        return state["room"]

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
        headers = {"Retry-After": str(state["room"].retry_after())} if isinstance(error, QueueFull) else None
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

    api = APIRouter(prefix="/v1")

    @app.get("/healthz", tags=["health"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def ready():
        if "room" not in state:
            return _error(503, "starting", "the engine is loading")
        return {"status": "ready", "engine": state["room"].model_version, "schema": state["room"].schema}

    @api.post("/checks", tags=["guidance"])
    async def checks(photo: UploadFile = File(...), category: GarmentCategory = Form(GarmentCategory.UPPER),
                     view: View = Form(View.FRONT), fitting: FittingRoom = Depends(room)) -> dict:
        """Photo guidance before any try-on: each check's status, message and fix, and crossing points to draw."""
        image = await run_in_threadpool(fitting.read_photo, await _read_upload(photo, fitting))
        report = await run_in_threadpool(fitting.check, image, category, view)
        return {**report, "size": list(image.shape[:2])}

    api_key_scheme = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                                description="the shop's key (FITROOM_API_KEY): catalogue changes and statistics")
    admin_scheme = HTTPBearer(auto_error=False, scheme_name="AdminToken",
                              description="the admin token (FITROOM_ADMIN_TOKEN): the admin page and its API")

    def _matches(credentials: HTTPAuthorizationCredentials | None, secret: str) -> bool:
        given = credentials.credentials if credentials is not None else ""
        return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())

    def shop(credentials: HTTPAuthorizationCredentials | None = Security(api_key_scheme)) -> None:
        if not settings.api_key:
            raise ServiceError("catalogue changes and statistics are turned off on this server: set FITROOM_API_KEY "
                               "and send it as Authorization: Bearer KEY", status=403, code="no_api_key")
        if not _matches(credentials, settings.api_key):
            raise ServiceError("this needs the shop's API key (Authorization: Bearer KEY)", status=401,
                               code="unauthorized")

    def admin(credentials: HTTPAuthorizationCredentials | None = Security(admin_scheme)) -> None:
        if not _matches(credentials, settings.admin_token):
            raise ServiceError("the admin API needs the admin token (Authorization: Bearer TOKEN)", status=401,
                               code="unauthorized")

    def shop_or_admin(key: HTTPAuthorizationCredentials | None = Security(api_key_scheme),
                      token: HTTPAuthorizationCredentials | None = Security(admin_scheme)) -> None:
        if not (_matches(key, settings.api_key) or _matches(token, settings.admin_token)):
            raise ServiceError("the statistics need the shop's API key or the admin token (Authorization: Bearer "
                               "KEY)", status=401, code="unauthorized")

    @api.post("/garments", tags=["garments"], status_code=201, dependencies=[Depends(shop)])
    async def add_garment(front: UploadFile = File(...), back: UploadFile | None = File(None),
                          name: str = Form("garment", min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN),
                          category: GarmentCategory | None = Form(None),
                          fitting: FittingRoom = Depends(room)) -> dict:
        """Add a garment (the shop's API key): product photos, a name (printable text, no angle brackets), a
        category (guessed from the photo when not given)."""
        front_image = await run_in_threadpool(fitting.read_photo, await _read_upload(front, fitting))
        back_image = None
        if back is not None and back.filename:
            back_image = await run_in_threadpool(fitting.read_photo, await _read_upload(back, fitting))
        return await run_in_threadpool(fitting.add_garment, name, category.value if category else None,
                                       front_image, back_image)

    @api.get("/garments", tags=["garments"])
    async def list_garments(fitting: FittingRoom = Depends(room)) -> list[dict]:
        return await run_in_threadpool(fitting.list_garments)

    @api.delete("/garments/{garment_id}", tags=["garments"], status_code=204, dependencies=[Depends(shop)])
    async def delete_garment(garment_id: str, fitting: FittingRoom = Depends(room)) -> None:
        """Take a garment out of the catalogue (the shop's API key); its try-ons stay in the statistics."""
        await run_in_threadpool(fitting.delete_garment, garment_id)

    @api.get("/garments/{garment_id}/{view}.png", tags=["garments"])
    async def garment_image(garment_id: str, view: View, fitting: FittingRoom = Depends(room)):
        return FileResponse(await run_in_threadpool(fitting.garment_image, garment_id, view.value),
                            media_type="image/png")

    @api.post("/tryons", tags=["try-ons"], status_code=202)
    async def submit(photo: UploadFile = File(...), garment_id: str = Form(..., max_length=32),
                     view: View = Form(View.FRONT), share: bool = Form(False), force: bool = Form(False),
                     fitting: FittingRoom = Depends(room)) -> dict:
        """Queue a try-on (the photo is checked first; a failing photo is refused unless ``force``)."""
        image = await run_in_threadpool(fitting.read_photo, await _read_upload(photo, fitting))
        return await run_in_threadpool(fitting.submit, image, garment_id, view, share, force)

    @api.get("/tryons/{tryon_id}", tags=["try-ons"])
    async def get_tryon(tryon_id: str, request: Request, fitting: FittingRoom = Depends(room)) -> dict:
        document = await run_in_threadpool(fitting.tryon, tryon_id)
        if document["status"] == "done":  # under the service's root path, wherever a proxy serves it
            base = request.scope.get("root_path", "").rstrip("/")
            document["result_url"] = f"{base}/v1/tryons/{tryon_id}/result.png"
            document["photo_url"] = f"{base}/v1/tryons/{tryon_id}/photo.png"
        return document

    @api.get("/tryons/{tryon_id}/{which}.png", tags=["try-ons"])
    async def tryon_image(tryon_id: str, which: Literal["result", "photo"], fitting: FittingRoom = Depends(room)):
        return FileResponse(await run_in_threadpool(fitting.tryon_file, tryon_id, which), media_type="image/png")

    @api.delete("/tryons/{tryon_id}", tags=["try-ons"], status_code=204)
    async def delete_tryon(tryon_id: str, fitting: FittingRoom = Depends(room)) -> None:
        """Delete everything of a try-on at once: photo, result, rating."""
        await run_in_threadpool(fitting.delete, tryon_id)

    @api.post("/tryons/{tryon_id}/rating", tags=["try-ons"])
    async def rate(tryon_id: str, rating: Rating, fitting: FittingRoom = Depends(room)) -> dict:
        return await run_in_threadpool(fitting.rate, tryon_id, rating.rating == "good", rating.reason)

    @api.get("/stats", tags=["stats"], dependencies=[Depends(shop_or_admin)])
    async def stats(fitting: FittingRoom = Depends(room)) -> dict:
        """Success rates (the shop's API key or the admin token)."""
        return await run_in_threadpool(fitting.stats)

    @api.get("/admin/rated", tags=["admin"], dependencies=[Depends(admin)])
    async def latest_rated(fitting: FittingRoom = Depends(room)) -> list[dict]:
        return await run_in_threadpool(fitting.latest_rated)

    app.include_router(api)

    def page(name: str, request: Request) -> HTMLResponse:
        html = (resources.files("fitroom.service") / "static" / name).read_text()
        # the page's requests start from the service's root (a proxy's sub-path), written into the page as data
        root = html_escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
        html = html.replace('<meta name="fitroom-root" content="">', f'<meta name="fitroom-root" content="{root}">')
        return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html)})

    @app.get("/", include_in_schema=False)
    async def shopper_page(request: Request):
        return page("index.html", request)

    @app.get("/admin", include_in_schema=False)
    async def admin_page(request: Request):
        return page("admin.html", request)

    return app
