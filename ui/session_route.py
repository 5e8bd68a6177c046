"""The session cookie's HTTP route, served next to Streamlit by `serve.py`.

Streamlit talks to the page over a websocket, which cannot set a cookie; an HttpOnly
cookie (out of reach of any script on the page) needs an HTTP response. So a sign-in
hands the page a one-time code, the page posts it here, and this route claims it from
the hub (`Hub.claim_web_session`) and answers with the session token in a cookie that
is HttpOnly, SameSite=Strict and, in production (behind TLS), Secure. The token never
appears in a URL: deep links are shared, and URLs end up in histories and proxy logs.
Streamlit sends the cookie with the websocket's opening request, where
`st.context.cookies` reads it on a reload (`ui.auth`).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hub.security.errors import HubError
from ui.hub import get_hub

COOKIE = "hub_session"
PATH = "/hub-session"
# A form or image from another site cannot send a custom header (a cross-site fetch
# that tries needs a CORS preflight this route never grants): no sign-in can be
# planted into someone's browser from elsewhere.
HEADER = "x-hub-session"
_MAX_CODE = 100
_mounted = False


def mounted() -> bool:
    """Whether this process serves the route (started as `streamlit run serve.py`);
    started from app.py alone, sessions last as long as their tab."""
    return _mounted


def routes() -> list[BaseRoute]:
    """The routes `serve.py` adds to Streamlit's."""
    global _mounted
    _mounted = True
    return [Route(PATH, _claim, methods=["POST"])]


async def _claim(request: Request) -> Response:
    if request.headers.get(HEADER) != "1":
        return Response(status_code=403)
    code = (await request.body())[:_MAX_CODE].decode("ascii", "replace")
    hub = get_hub()
    try:
        token = await run_in_threadpool(hub.claim_web_session, code)
    except HubError:
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(hub.settings.session_max_hours * 3600),
        path="/",
        secure=hub.settings.is_production or request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
