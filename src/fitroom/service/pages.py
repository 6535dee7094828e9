"""The service's pages: the shopper's (``/``) and the admin's (``/admin``), served with a Content-Security-Policy
that lets only their own inline scripts run, and told the service's root path (a proxy's sub-path)."""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape as html_escape
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

NONE = "'none'"


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



def page(name: str, request: Request) -> HTMLResponse:
    html = (resources.files("fitroom.service") / "static" / name).read_text()
    # the page's requests start from the service's root (a proxy's sub-path), written into the page as data
    root = html_escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
    html = html.replace('<meta name="fitroom-root" content="">', f'<meta name="fitroom-root" content="{root}">')
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html)})


@router.get("/")
async def shopper_page(request: Request):
    return page("index.html", request)


@router.get("/admin")
async def admin_page(request: Request):
    return page("admin.html", request)
