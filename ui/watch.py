"""Pieces of the plate-watch page (布控): the watch form, the live hit list (rows, or
pointers with the one-click request; for commanders, a joint operation or an assist
(协查) from the hit), the watched car's track on the map, and the watch lists."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub.codes import codes
from hub.security.reasons import Reason
from hub.watch import MAX_WATCH, PROVINCE, HitView, WatchView
from ui.i18n import lang, t
from ui.pointers import pointer_card
from ui.reason import reason_form
from ui.response import attempt
from ui.tables import LOCAL_TZ, local_time, record_table
from ui.text import plain
from ui.trajectory import trajectory_map


def watch_form(hub, principal, names: dict[str, str]) -> None:
    """A new watch: plate, reason, scope and a required, bounded expiry."""
    reason = reason_form(narrow=True)
    with st.form("watch_new"):
        plate = st.text_input(t("field_plate"), max_chars=16)
        province = st.toggle(t("watch_scope_province"), value=True)
        cities = st.multiselect(t("watch_scope_cities"), list(names), format_func=names.get)
        days = st.slider(t("watch_days"), 1, MAX_WATCH.days, 7)
        why = st.text_area(t("watch_justification"), max_chars=1000)
        go = st.form_submit_button(t("watch_create"), type="primary", disabled=reason is None)
    if go and reason is not None:
        expires = datetime.now(ZoneInfo(LOCAL_TZ)) + timedelta(days=days)
        scope = PROVINCE if province else cities
        done = attempt(
            lambda: hub.watch.create_watch(principal, plate, reason, scope, expires, why),
            t("watch_created"),
        )
        if done is not None:
            st.rerun()


def _scope_text(w: WatchView, names: dict[str, str]) -> str:
    return t("watch_scope_province") if w.scope == (PROVINCE,) else "、".join(
        names.get(c, c) for c in w.scope
    )  # fmt: skip


def watch_table(hub, principal, watches: list[WatchView], names: dict[str, str], *,
                can_end: bool) -> None:  # fmt: skip
    """What is watched, by whom, why, where and until when; an end button per watch."""
    if not watches:
        st.caption(t("watch_none"))
        return
    purposes = {c.code: c.label(lang()) for c in codes("purpose")}
    for w in watches:
        c = st.columns([8, 2], vertical_alignment="center")
        state = t("watch_active") if w.active else t(f"watch_ended_{w.end_reason or 'expired'}")
        c[0].markdown(
            f"**{plain(w.plate)}** · {plain(w.owner_name)} · {purposes.get(w.purpose, w.purpose)}"
            f" · {plain(w.case_no)} · {_scope_text(w, names)} · "
            f"{t('watch_until', at=local_time(w.expires_at))} · {state} · {t('watch_hits_n', n=w.hits)}"
        )  # fmt: skip
        if w.justification:
            c[0].caption(plain(w.justification))
        mine = w.owner_id == principal.user_id or principal.role == "province_approver"
        ours = principal.role == "city_approver" and w.owner_city == principal.city_code
        if (
            can_end
            and w.active
            and (mine or ours)
            and c[1].button(t("watch_end"), key=f"watch-end-{w.id}")
        ):
            if attempt(lambda w=w: hub.watch.end_watch(principal, w.id), t("watch_ended")) is None:
                return
            st.rerun()


def hit_list(hub, principal, hits: list[HitView], names: dict[str, str], *,
             focus: int | None = None) -> None:  # fmt: skip
    """Hits newest first: open reads as a table line, the rest as pointers; the hit a
    notice links to (`focus`) first, marked."""
    if not hits:
        st.caption(t("watch_no_hits"))
        return
    hits = sorted(hits, key=lambda h: h.id != focus)  # stable: the rest stay newest first
    for h in hits:
        if h.id == focus:
            st.caption(f":material/link: {t('notice_opened_item')}")
        where = names.get(h.city_code, h.city_code)
        head = t("watch_hit_line", plate=plain(h.plate), city=where, case_no=plain(h.case_no),
                 from_city=names.get(h.owner_city or "", ""), at=local_time(h.created_at))  # fmt: skip
        with st.container(border=True):
            st.markdown(f":material/notifications_active: {head}")
            if h.sighting is not None:
                row = h.sighting
                frame = pd.DataFrame([{
                    t("field_ts"): local_time(row["ts"], "%m-%d %H:%M:%S"),
                    t("traj_col_camera"): row["camera"], t("city"): where,
                }])  # fmt: skip
                record_table(hub, principal, frame)
                if principal.role == "commander" and h.city_code == principal.city_code:
                    _hit_actions(hub, principal, h, where)
            elif h.pointer is not None and h.mine:
                _hit_pointer(hub, principal, h, names)
            elif h.pointer is not None:
                st.caption(t("pointer_line", n=1, city=where, level=t("level_" + h.pointer.level)))


def _hit_actions(hub, principal, h: HitView, where: str) -> None:
    """The commander of the city where the car was read: a joint operation inviting the
    watching city, or an assist (协查) asking it, each one click."""
    op, assist = st.columns(2)
    if op.button(t("watch_open_operation"), key=f"watch-op-{h.id}", icon=":material/groups:"):
        attempt(lambda: hub.watch.operation_from_hit(principal, h.id), t("watch_operation_opened"))
    if (
        h.owner_city
        and h.owner_city != principal.city_code
        and assist.button(
            t("watch_open_assist"), key=f"watch-as-{h.id}", icon=":material/travel_explore:"
        )
    ):
        asked = t("watch_assist_asked", plate=h.plate, city=where, case_no=h.case_no,
                  at=local_time(h.sighting["ts"], "%m-%d %H:%M"))  # fmt: skip
        attempt(lambda: hub.watch.assist_from_hit(principal, h.id, asked),
                t("watch_assist_opened"))  # fmt: skip


def _hit_pointer(hub, principal, h: HitView, names: dict[str, str]) -> None:
    p = h.pointer
    city = names.get(p.city_code, p.city_code)
    st.markdown(f":material/lock: {t('pointer_line', n=1, city=city, level=t('level_' + p.level))}")
    if not p.route.requestable:
        st.caption(t("pointer_never"))
        return
    st.caption(t("route_" + p.route.value))
    with st.form(f"watch-req-{h.id}"):
        why = st.text_area(t("justification"), max_chars=1000)
        if st.form_submit_button(t("send_request")):
            attempt(lambda: hub.watch.request_for_hit(principal, h.id, why), t("watch_requested"))


def track(hub, principal, watch_id: int, names: dict[str, str]) -> None:
    """The watched car's track since the watch began (an audited lookup under the watch's
    reason); pointers for the reads the viewer may not open."""
    tr = attempt(lambda: hub.watch.track(principal, watch_id))
    if tr is None:
        return
    pts = pd.DataFrame(tr.points)
    if not pts.empty:
        trajectory_map(hub, tr, pts, names)
    else:
        st.caption(t("watch_no_track"))
    if not tr.pointers:
        return
    w = next((w for w in hub.watch.my_watches(principal) if w.id == watch_id), None)
    for p in tr.pointers if w is not None else ():
        pointer_card(hub, principal, p, names=names, reason=Reason(w.purpose, w.case_no),
                     scope=("plate", tr.plate), key=f"watch-tr-{watch_id}-")  # fmt: skip
