"""The app as an ASGI application: Streamlit (app.py) plus the session cookie's route
(ui/session_route.py), so that a sign-in survives a reload, and the HTML page answered
without console 404s or Streamlit's English "Page not found" (ui/index_route.py). Start
it with ``streamlit run serve.py`` (the same options as app.py); ``streamlit run app.py``
still works, with sessions that end when their tab reloads."""

import streamlit as st
from starlette.middleware import Middleware
from streamlit.runtime.pages_manager import PagesManager

from ui.index_route import IndexMiddleware
from ui.session_route import routes

# app.py navigates with st.navigation. Until a first session in the process has called
# it, Streamlit treats the pages/ folder as the old multipage app, and a deep link that
# is the first request after a restart (a wall screen reloading) would run that page's
# file without app.py. Settled once here (Streamlit's own flag, set by st.navigation).
PagesManager.uses_pages_directory = False

app = st.App("app.py", routes=routes(), middleware=[Middleware(IndexMiddleware)])
