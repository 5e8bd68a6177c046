"""Plate watch (布控): put a plate on watch with a reason, scope and expiry; live hits
(rows, or pointers with a one-click request; a joint operation or an assist (协查) from
a hit in the commander's city); the watched car's track; the city's watch list."""

from datetime import UTC, datetime

import streamlit as st

from hub.watch import WATCH_ROLES
from ui import watch as ui_watch
from ui.auth import guard
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.notices import linked_item
from ui.response import attempt

REFRESH_SECONDS = 5
principal = guard("watch")
hub = hub_or_stop()
names = city_names()
st.title(t("watch_heading"))
if principal.role in WATCH_ROLES:
    with st.expander(t("watch_new"), icon=":material/add_alert:"):
        ui_watch.watch_form(hub, principal, names)
tab_hits, tab_mine, tab_city = st.tabs(
    [t("watch_tab_hits"), t("watch_tab_mine"), t("watch_tab_city")]
)

with tab_hits:
    # The page's run reads every hit (one audited view); the fragment then asks only for
    # hits raised since its last look, so an open page is not one audit entry per poll.
    st.session_state["watch_hits_from"] = datetime.now(UTC)
    st.session_state["watch_hits"] = attempt(lambda: hub.watch.hits(principal)) or []

    @st.fragment(run_every=REFRESH_SECONDS)
    def live_hits() -> None:
        shown = st.session_state.get("watch_hits", [])
        since = max([h.created_at for h in shown] + [st.session_state["watch_hits_from"]])
        new = attempt(lambda: hub.watch.hits(principal, since=since))
        st.session_state["watch_hits"] = shown = list(new or []) + shown
        ui_watch.hit_list(hub, principal, shown, names, focus=linked_item("hit"))

    live_hits()

with tab_mine:
    mine = attempt(lambda: hub.watch.my_watches(principal)) or []
    ui_watch.watch_table(hub, principal, mine, names, can_end=True)
    active = {w.id: w.plate for w in mine if w.active}
    if active:
        chosen = st.selectbox(t("watch_track_of"), list(active), format_func=active.get)

        @st.fragment(run_every=REFRESH_SECONDS * 3)
        def live_track() -> None:
            ui_watch.track(hub, principal, chosen, names)

        live_track()

with tab_city:
    listed = attempt(lambda: hub.watch.watches_for_city(principal)) or []
    approver = principal.role in ("city_approver", "province_approver")
    ui_watch.watch_table(hub, principal, listed, names, can_end=approver)
