"""Trajectory: one plate's sightings across cities as a path with time playback; sightings
the viewer may not open stay pointers to the owning city, with request and break-glass."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.pointers import pointer_card
from ui.reason import reason_form
from ui.tables import LOCAL_TZ, local_time, record_table
from ui.text import plain
from ui.trajectory import trajectory_map

principal = guard("trajectory")
hub = hub_or_stop()
names = city_names()
tz = ZoneInfo(LOCAL_TZ)
st.title(t("traj_heading"))
reason = reason_form()
now = datetime.now(tz).replace(second=0, microsecond=0)
for k, v in {"0": now - timedelta(hours=24), "1": now + timedelta(minutes=1)}.items():
    st.session_state.setdefault(f"traj_d{k}", v.date())
    st.session_state.setdefault(f"traj_t{k}", v.time())
with st.form("trajectory"):
    c = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
    plate = c[0].text_input(t("field_plate"), max_chars=64, key="traj_plate")
    d0, t0 = c[1].date_input(t("traj_from"), key="traj_d0"), c[2].time_input(t("traj_from_time"), key="traj_t0", step=60)  # fmt: skip
    d1, t1 = c[3].date_input(t("traj_to"), key="traj_d1"), c[4].time_input(t("traj_to_time"), key="traj_t1", step=60)  # fmt: skip
    go = st.form_submit_button(t("search"), type="primary", disabled=reason is None)
if go and reason is not None:
    start, end = datetime.combine(d0, t0, tz), datetime.combine(d1, t1, tz)
    st.session_state["traj_query"] = {"plate": plate, "start": start, "end": end, "reason": reason}
query, tr = st.session_state.get("traj_query"), None
if query:  # the last query runs again on every load: a grant obtained since shows at once
    try:
        tr = hub.plate_trajectory(principal, **query)
    except HubError as exc:
        st.session_state.pop("traj_query", None)
        if exc.code == "bad_window":
            st.error(t("traj_err_bad_window", days=31), icon=":material/block:")
        else:
            show_error(exc)
if flash := st.session_state.pop("traj_flash", None):
    st.success(flash)
if tr is not None:
    hidden_n = sum(p.count for p in tr.pointers)
    st.caption(t("traj_counts", plate=plain(tr.plate), rows=len(tr.points), hidden=hidden_n))
    if tr.grants_used:
        st.info(t("opened_with_grant", grants=", ".join(f"#{g}" for g in tr.grants_used)))
    pts = pd.DataFrame(tr.points)
    if not pts.empty:
        trajectory_map(hub, tr, pts, names)
        cols = {"time": t("field_ts"), "camera": t("traj_col_camera"), "city": t("city"),
                "speed_kmh": t("traj_col_speed"), "camera_speed_kmh": t("traj_col_camera_speed")}  # fmt: skip
        table = pts[list(cols)].copy()
        for c in ("speed_kmh", "camera_speed_kmh"):  # the first read has no section speed
            table[c] = table[c].map(lambda v: "—" if pd.isna(v) else f"{v:.0f}")
        record_table(hub, principal, table.rename(columns=cols))
    elif not tr.pointers:
        st.info(t("no_results"))
    if tr.crossings:
        st.subheader(t("traj_crossings"))
        for x in tr.crossings:
            st.markdown(f":material/swap_horiz: **{names[x['from_city']]} → {names[x['to_city']]}** · {local_time(x['left_at'])} → "
                        f"{local_time(x['entered_at'])} · {plain(x['from_camera'])} → {plain(x['to_camera'])}")  # fmt: skip

    def reopen(grant_id: int) -> None:  # the last query runs again: the rows are open now
        st.session_state["traj_flash"] = t("break_glass_done", id=grant_id)
        st.rerun()

    for p in tr.pointers:
        pointer_card(hub, principal, p, names=names, reason=query["reason"],
                     scope=("plate", tr.plate), key="traj-", after_glass=reopen)  # fmt: skip
