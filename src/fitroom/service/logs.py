"""Request ids and structured logs for the service.

Every request gets an id: the caller's ``X-Request-ID`` when it is a short token (letters, digits, ``.``, ``_``,
``-``; at most 64), else a new one. It is sent back in the response's ``X-Request-ID`` and set on every log record
made while the request is handled (:class:`RequestIdFilter`); with ``FITROOM_LOG_FORMAT=json`` each record is one
JSON object per line (:class:`JsonFormatter`), ready for a log collector.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("fitroom_request_id", default="-")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id(given: str | None) -> str:
    """``given`` when it is a safe token, else a new random id (32 hex digits)."""
    return given if given and _TOKEN.fullmatch(given) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id``: the id of the request being handled, ``-`` outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id``,
    and ``error`` (the exception's type and text) when one is attached."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
        document = {"time": when, "level": record.levelname.lower(), "logger": record.name,
                    "message": record.getMessage(), "request_id": getattr(record, "request_id", REQUEST_ID.get())}
        if record.exc_info and record.exc_info[0] is not None:
            document["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(document, ensure_ascii=False)


def configure(log_format: str, handlers: list[logging.Handler] | None = None) -> None:
    """Add the request id to ``handlers`` (default: every handler of the root logger), and with ``log_format ==
    "json"`` make them write JSON lines."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
