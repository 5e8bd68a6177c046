"""The app's HTML page as `serve.py` answers it: no 404 in the browser's console, and no
English "Page not found".

Two things Streamlit's page does by itself that a person (or a browser test) sees:

- Opened at a page's address (/situation, a reload or a deep link), Streamlit's page
  first guesses that the address is where the server lives and asks
  ``/situation/_stcore/health`` and ``/situation/_stcore/host-config``: two 404s in the
  console on every reload, before it tries ``/_stcore/…`` (streamlit#7074, open). The
  page reads the server's address from ``window.__streamlit.BACKEND_BASE_URL`` when it
  is set, so this middleware sets it (the root, under ``server.baseUrlPath``) in the page.
- An address that names no page makes Streamlit run the start page under an English
  "Page not found" dialog. This middleware sends such an address to ``/not-found``,
  a page of ours in the reader's language (app.py, `ui.frame.missing_page`).

Only Streamlit's HTML page (a 200 ``text/html`` answer) is touched; every other answer
passes through unchanged.
"""

from __future__ import annotations

import gzip
import json

import streamlit as st

from ui.frame import NOT_FOUND
from ui.registry import PAGES

_PAGE_PATHS = frozenset({"", "sign-in", NOT_FOUND, *(p.key for p in PAGES)})


def _base() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/" if base else "/"


def script() -> bytes:
    """The inline script that names the server's address before Streamlit's page runs."""
    base = json.dumps(_base())
    return (
        "<script>window.__streamlit=Object.assign({},window.__streamlit,"
        f"{{BACKEND_BASE_URL:new URL({base},window.location.href).href}});</script>"
    ).encode()


def page_path(path: str) -> str | None:
    """The page an address names ("" for the start page), or None for no page."""
    base = _base()
    if not path.startswith(base) and path != base.rstrip("/"):
        return None
    name = path[len(base) :].strip("/") if path.startswith(base) else ""
    return name if name in _PAGE_PATHS else None


class IndexMiddleware:
    """ASGI middleware around Streamlit (serve.py): see the module's docstring."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        passing = False
        chunks: list[bytes] = []

        async def watch(message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if message["status"] != 200 or not html:
                    passing = True
                    await send(message)
                else:
                    start = message
                return
            if passing or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, watch)

    async def _answer(self, scope, start: dict, body: bytes, send) -> None:
        if page_path(scope["path"]) is None:
            query = scope.get("query_string", b"")
            location = _base() + NOT_FOUND + ("?" + query.decode("latin-1") if query else "")
            await send({"type": "http.response.start", "status": 307,
                        "headers": [(b"location", location.encode("latin-1")),
                                    (b"content-length", b"0"),
                                    (b"cache-control", b"no-store")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in
                   (b"content-length", b"content-encoding", b"etag")]  # fmt: skip
        encoding = dict(start.get("headers", [])).get(b"content-encoding", b"")
        if encoding == b"gzip":
            body = gzip.decompress(body)
        elif encoding:  # an encoding we do not read: leave the page as it is
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        body = body.replace(b"<head>", b"<head>" + script(), 1)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
