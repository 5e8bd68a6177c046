"""Entry point: page config, sign-in gate, navigation built from the user's role."""

from pathlib import Path

import streamlit as st

from ui.auth import current_principal, identity_sidebar, session_guard, sign_in_form
from ui.frame import city_names, hub_or_stop, page_furniture, production_gate
from ui.i18n import language_switch, t
from ui.registry import PAGES, pages_for

st.set_page_config(
    page_title=t("app_title"),
    page_icon=str(Path(__file__).parent / "ui" / "icon.png"),
    layout="wide",
)
hub = hub_or_stop()
production_gate(hub)
language_switch()
principal = current_principal()
if principal is None:
    # Every page's path answers with the sign-in form, so a deep link opened signed out
    # (/alerts?alert=5) stays in the address bar and opens once the person has signed in.
    sign_in = st.Page(sign_in_form, title=t("sign_in"), url_path="sign-in", default=True)
    held = [st.Page(sign_in_form, title=t(p.title_key), url_path=p.key) for p in PAGES]
    st.navigation([sign_in, *held], position="hidden").run()
else:
    # Every hub call re-checks the session; one that finds it ended signs out here.
    with session_guard():
        identity_sidebar(principal, city_names())
        pages = pages_for(principal.role)
        if not pages:
            st.error(t("no_pages_for_role"))
            st.stop()
        nav = [
            st.Page(p.file, title=t(p.title_key), icon=p.icon, url_path=p.key, default=i == 0)
            for i, p in enumerate(pages)
        ]
        page = st.navigation(nav)
        page_furniture(principal)  # after navigation: its links name registered pages
        page.run()
