"""Entry point: page config, sign-in gate, navigation built from the user's role."""

from pathlib import Path

import streamlit as st

from ui.auth import current_principal, identity_sidebar, session_guard, sign_in_form
from ui.frame import (
    NOT_FOUND,
    city_names,
    hub_or_stop,
    missing_page,
    page_furniture,
    production_gate,
    streamlit_texts,
)
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
streamlit_texts()  # Streamlit's own uploader words, in the reader's language
principal = current_principal()
if principal is None:
    # Every page's path answers with the sign-in form, so a deep link opened signed out
    # (/alerts?alert=5) stays in the address bar and opens once the person has signed in.
    sign_in = st.Page(sign_in_form, title=t("sign_in"), url_path="sign-in", default=True)
    held = [st.Page(sign_in_form, title=t(p.title_key), url_path=p.key) for p in PAGES]
    lost = st.Page(sign_in_form, title=t("sign_in"), url_path=NOT_FOUND)
    st.navigation([sign_in, *held, lost], position="hidden").run()
else:
    # Every hub call re-checks the session; one that finds it ended signs out here.
    with session_guard():
        identity_sidebar(principal, city_names())
        pages = pages_for(principal.role)
        if not pages:
            st.error(t("no_pages_for_role"))
            st.stop()
        nav = [st.Page(p.file, title=t(p.title_key), icon=p.icon, url_path=p.key) for p in pages]
        # "/" opens the first page at its own address, so that address (a shared link, a
        # reload) names that page too: Streamlit reserves a default page's own path
        # without answering it ("Page not found" on /overview).
        start = st.Page(lambda: st.switch_page(nav[0]), title=t(pages[0].title_key),
                        url_path="start", default=True, visibility="hidden")  # fmt: skip
        # Addresses of pages this role may not open, and of no page at all, say so in the
        # reader's language (hidden from the menu) instead of Streamlit's English dialog.
        others = [
            st.Page(missing_page("page_not_allowed", nav[0]), title=t(p.title_key),
                    url_path=p.key, visibility="hidden")
            for p in PAGES if p not in pages
        ]  # fmt: skip
        lost = st.Page(missing_page("frame_page_not_found", nav[0]), title=t("app_title"),
                       url_path=NOT_FOUND, visibility="hidden")  # fmt: skip
        page = st.navigation([start, *nav, *others, lost])
        page_furniture(principal)  # after navigation: its links name registered pages
        page.run()
