"""The service's errors: each has an HTTP status, a code and a message safe to show a client."""

from __future__ import annotations

import re
from pathlib import Path

from fitroom.errors import FitroomError


class ServiceError(FitroomError):
    """An error with an HTTP status and a code, whose message is safe to show (no file names, no image data)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status or self.status
        self.code = code or self.code


class NotFound(ServiceError):
    status, code = 404, "not_found"


class QueueFull(ServiceError):
    status, code = 429, "queue_full"


class PhotoRefused(ServiceError):
    status, code = 422, "photo_refused"

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.\-]+){2,}")


def public_message(error: BaseException, root: Path) -> str:
    """``error``'s message for a client: no path of the server's file system (in the data folder or elsewhere)
    is passed on; each becomes "a file on the server"."""
    message = str(error)
    if not root.is_absolute():  # a relative data folder's paths are made absolute, so the pattern finds them
        message = message.replace(str(root), str(root.resolve()))
    return _PATH.sub("a file on the server", message)
