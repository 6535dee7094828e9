"""The service's API (``/v1``): guidance, garments, try-ons, ratings, statistics.

Endpoints reach the running :class:`~fitroom.service.core.FittingRoom` and the settings through the app's state
(``request.app.state``), so these routers hold no state of their own.
"""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Request, Security, UploadFile
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fitroom.labels import GarmentCategory, View
from fitroom.service.core import FittingRoom, ServiceError
from fitroom.service.settings import Settings

#: a garment's name: printable text without angle brackets, at most this long
MAX_NAME = 80
NAME_PATTERN = r"^[^\x00-\x1f\x7f<>]+$"

router = APIRouter(prefix="/v1")


class Rating(BaseModel):
    rating: Literal["good", "bad"]
    reason: str | None = Field(None, max_length=500)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def room(request: Request) -> FittingRoom:
    """The running fitting room (503 while it starts)."""
    fitting = getattr(request.app.state, "room", None)
    if fitting is None:
        raise ServiceError("the service is starting", status=503, code="starting")
    return fitting


async def _read_upload(upload: UploadFile, room: FittingRoom) -> bytes:
    data = await upload.read(room.settings.max_upload_bytes + 1)
    if len(data) > room.settings.max_upload_bytes:
        raise ServiceError(f"the file is larger than {room.settings.max_upload_bytes / 1e6:.0f} MB", status=413,
                           code="too_large")
    return data


@router.post("/checks", tags=["guidance"])
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


def shop(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(api_key_scheme)
         ) -> None:
    if not _settings(request).api_key:
        raise ServiceError("catalogue changes and statistics are turned off on this server: set FITROOM_API_KEY "
                           "and send it as Authorization: Bearer KEY", status=403, code="no_api_key")
    if not _matches(credentials, _settings(request).api_key):
        raise ServiceError("this needs the shop's API key (Authorization: Bearer KEY)", status=401,
                           code="unauthorized")


def admin(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(admin_scheme)
          ) -> None:
    if not _matches(credentials, _settings(request).admin_token):
        raise ServiceError("the admin API needs the admin token (Authorization: Bearer TOKEN)", status=401,
                           code="unauthorized")


def shop_or_admin(request: Request, key: HTTPAuthorizationCredentials | None = Security(api_key_scheme),
                  token: HTTPAuthorizationCredentials | None = Security(admin_scheme)) -> None:
    if not (_matches(key, _settings(request).api_key) or _matches(token, _settings(request).admin_token)):
        raise ServiceError("the statistics need the shop's API key or the admin token (Authorization: Bearer "
                           "KEY)", status=401, code="unauthorized")


@router.post("/garments", tags=["garments"], status_code=201, dependencies=[Depends(shop)])
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


@router.get("/garments", tags=["garments"])
async def list_garments(fitting: FittingRoom = Depends(room)) -> list[dict]:
    return await run_in_threadpool(fitting.list_garments)


@router.delete("/garments/{garment_id}", tags=["garments"], status_code=204, dependencies=[Depends(shop)])
async def delete_garment(garment_id: str, fitting: FittingRoom = Depends(room)) -> None:
    """Take a garment out of the catalogue (the shop's API key); its try-ons stay in the statistics."""
    await run_in_threadpool(fitting.delete_garment, garment_id)


@router.put("/garments/{garment_id}/photos/{view}", tags=["garments"], dependencies=[Depends(shop)])
async def set_garment_photo(garment_id: str, view: View, photo: UploadFile = File(...),
                            fitting: FittingRoom = Depends(room)) -> dict:
    """Add or replace the garment's product photo of any view (front, back, side-left, side-right; the shop's API
    key); try-ons of that view become possible."""
    image = await run_in_threadpool(fitting.read_photo, await _read_upload(photo, fitting))
    return await run_in_threadpool(fitting.set_garment_photo, garment_id, view, image)


@router.get("/garments/{garment_id}/{view}.png", tags=["garments"])
async def garment_image(garment_id: str, view: View, fitting: FittingRoom = Depends(room)):
    return Response(await run_in_threadpool(fitting.garment_image, garment_id, view.value), media_type="image/png")


@router.post("/tryons", tags=["try-ons"], status_code=202)
async def submit(photo: UploadFile = File(...), garment_id: str = Form(..., max_length=32),
                 view: View = Form(View.FRONT), share: bool = Form(False), force: bool = Form(False),
                 fitting: FittingRoom = Depends(room)) -> dict:
    """Queue a try-on (the photo is checked first; a failing photo is refused unless ``force``)."""
    image = await run_in_threadpool(fitting.read_photo, await _read_upload(photo, fitting))
    return await run_in_threadpool(fitting.submit, image, garment_id, view, share, force)


@router.get("/tryons/{tryon_id}", tags=["try-ons"])
async def get_tryon(tryon_id: str, request: Request, fitting: FittingRoom = Depends(room)) -> dict:
    document = await run_in_threadpool(fitting.tryon, tryon_id)
    if document["status"] == "done":  # under the service's root path, wherever a proxy serves it
        base = request.scope.get("root_path", "").rstrip("/")
        document["result_url"] = f"{base}/v1/tryons/{tryon_id}/result.png"
        document["photo_url"] = f"{base}/v1/tryons/{tryon_id}/photo.png"
    return document


@router.get("/tryons/{tryon_id}/{which}.png", tags=["try-ons"])
async def tryon_image(tryon_id: str, which: Literal["result", "photo"], fitting: FittingRoom = Depends(room)):
    return Response(await run_in_threadpool(fitting.tryon_file, tryon_id, which), media_type="image/png")


@router.delete("/tryons/{tryon_id}", tags=["try-ons"], status_code=204)
async def delete_tryon(tryon_id: str, fitting: FittingRoom = Depends(room)) -> None:
    """Delete everything of a try-on at once: photo, result, rating."""
    await run_in_threadpool(fitting.delete, tryon_id)


@router.post("/tryons/{tryon_id}/rating", tags=["try-ons"])
async def rate(tryon_id: str, rating: Rating, fitting: FittingRoom = Depends(room)) -> dict:
    return await run_in_threadpool(fitting.rate, tryon_id, rating.rating == "good", rating.reason)


@router.get("/stats", tags=["stats"], dependencies=[Depends(shop_or_admin)])
async def stats(fitting: FittingRoom = Depends(room)) -> dict:
    """Success rates (the shop's API key or the admin token)."""
    return await run_in_threadpool(fitting.stats)


@router.get("/admin/rated", tags=["admin"], dependencies=[Depends(admin)])
async def latest_rated(fitting: FittingRoom = Depends(room)) -> list[dict]:
    return await run_in_threadpool(fitting.latest_rated)
