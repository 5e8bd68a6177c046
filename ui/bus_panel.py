"""The live bus on the Feeds page (issue 17), for the feed operators: is the bus up (which
server, how many messages wait for the hub), how fresh each city's streamed data is,
which messages were parked and why, and the message contract a city builds against.
A bus that is down reads as a plain message with what to check, never as an error."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from hub import bus_view
from ui.feeds import code_text, label
from ui.i18n import t
from ui.standard_view import example_record
from ui.tables import EMPTY, duration_text, local_time
from ui.text import plain

ASK_EVERY_SECONDS = 15  # a page rerun (any click) asks the bus again at most this often
_KEY = "_bus_panel_status"


def server_text(servers: tuple[str, ...]) -> str:
    """Servers as host:port (no scheme, never a password)."""
    shown = []
    for s in servers:
        u = urlsplit(s if "://" in s else f"nats://{s}")
        shown.append(f"{u.hostname or s}:{u.port or 4222}")
    return "、".join(shown) if shown else EMPTY


def _view(hub, principal) -> bus_view.BusView:
    kept = st.session_state.get(_KEY)
    fresh = kept is not None and time.monotonic() - kept[0] < ASK_EVERY_SECONDS
    view = bus_view.snapshot(hub, principal, status=kept[1] if fresh else None)
    if not fresh:
        st.session_state[_KEY] = (time.monotonic(), view.status)
    return view


def status_section(status) -> None:
    servers = plain(server_text(status.servers))
    if status.up:
        st.success(t("fb_up", servers=servers), icon=":material/cloud_done:")
    else:
        st.warning(t("fb_down", servers=servers), icon=":material/cloud_off:")
        st.caption(t("fb_down_hint"))
        st.code("python -m hub bus status", language="bash")
    figures = [("fb_metric_state", t("fb_state_up") if status.up else t("fb_state_down"), None),
               ("fb_metric_messages", status.messages, None),
               ("fb_metric_pending", status.pending, t("fb_metric_pending_help")),
               ("fb_metric_in_flight", status.in_flight, None),
               ("fb_metric_parked", status.parked, None)]  # fmt: skip
    for col, (key, value, helptext) in zip(st.columns(len(figures)), figures, strict=True):
        shown = value if isinstance(value, str) else (f"{value:,}" if status.up else EMPTY)
        col.metric(t(key), shown, help=helptext)
    st.caption(t("fb_checked", time=local_time(status.checked_at, "%Y-%m-%d %H:%M:%S")))


def _when(then: datetime | None, now: datetime) -> tuple[str, str]:
    """A time on the province's clock and how long ago it was; dashes for never."""
    if then is None:
        return EMPTY, EMPTY
    return local_time(then, "%Y-%m-%d %H:%M"), duration_text((now - then).total_seconds())


def freshness_frame(rows, names: dict[str, str], now: datetime) -> pd.DataFrame:
    def state(f) -> str:
        if f.last_batch_at is None:
            return t("fb_fresh_never")
        return t("fb_fresh_stale") if f.stale else t("fb_fresh_ok")

    out = []
    for f in rows:
        last, age = _when(f.last_batch_at, now)
        out.append({
            t("fb_col_city"): names.get(f.city_code, f.city_code),
            t("fb_col_dataset"): label("dataset_", f.dataset), t("fb_col_state"): state(f),
            t("fb_col_last"): last, t("fb_col_age"): age, t("fb_col_batches"): f"{f.batches:,}",
        })  # fmt: skip
    return pd.DataFrame(out)


def dead_frame(dead, names: dict[str, str]) -> pd.DataFrame:
    rows = []
    for d in dead:
        parts = bus_view.subject_source(d.subject)
        city, ds = parts if parts else (None, None)
        rows.append({
            t("fb_col_parked_at"): _when(d.parked_at, d.parked_at or datetime.now(UTC))[0],
            t("fb_col_city"): names.get(city, city) if city else t("fb_unknown_city"),
            t("fb_col_dataset"): label("dataset_", ds) if ds else EMPTY,
            t("fb_col_reason"): code_text(d.reason), t("fb_col_tries"): f"{d.deliveries:,}",
            t("fb_col_size"): f"{d.size:,}", t("fb_col_seq"): f"{d.stream_seq}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def contract_section(names: dict[str, str], std: dict) -> None:
    mb = std["message_bus"]
    st.markdown(t("fb_contract_body", window=f"{mb['duplicate_window_seconds'] // 60:d}",
                  kb=f"{mb['max_message_bytes'] >> 10:d}", tries=f"{bus_view.MAX_TRIES:d}"))  # fmt: skip
    city = st.selectbox(t("fb_contract_city"), list(names), format_func=names.__getitem__)
    c = bus_view.city_contract(city)
    st.caption(t("fb_contract_machine"))
    width = max(len(s) for s in c.subjects.values())
    subjects = "\n".join(
        f"  {s:<{width}}  # {label('dataset_', ds)}" for ds, s in c.subjects.items()
    )
    st.code(
        f"# {names[city]}\nsubjects:\n{subjects}\nheader:   {bus_view.DEDUP_HEADER}: {c.message_id}\n"
        f"user:     {c.user}\npublish:  {c.publish}\ninbox:    {c.inbox_prefix}",
        language="yaml",
    )
    st.caption(t("fb_contract_credentials"))
    st.code(f"python -m hub bus credentials --city {city}", language="bash")
    st.markdown(f"**{t('fb_contract_shape')}**")
    datasets = list(mb["datasets"])
    for tab, ds in zip(st.tabs([label("dataset_", d) for d in datasets]), datasets, strict=True):
        fields, required = bus_view.feed_fields(ds)
        tab.code(example_record(ds, std["entities"][ds], fields, required), language="javascript")


def bus_panel(hub, principal, names: dict[str, str]) -> None:
    """The Live bus tab of the Feeds page."""
    st.caption(t("fb_caption"))
    if st.button(t("fb_refresh"), icon=":material/refresh:", key="bus_refresh"):
        st.session_state.pop(_KEY, None)
    view = _view(hub, principal)
    st.subheader(t("fb_status"))
    status_section(view.status)

    st.subheader(t("fb_fresh"))
    st.caption(t("fb_fresh_caption", minutes=f"{view.stale_minutes:d}"))
    stale = sum(f.stale for f in view.freshness)
    if view.freshness:
        st.caption(t("fb_fresh_summary", stale=f"{stale:d}", total=len(view.freshness)))
        frame = freshness_frame(view.freshness, names, datetime.now(UTC))
        st.dataframe(frame, hide_index=True, width="stretch")

    st.subheader(t("fb_dead"))
    st.caption(t("fb_dead_caption", tries=f"{view.max_tries:d}"))
    if view.dead_letters is None:
        st.info(t("fb_dead_unknown"), icon=":material/cloud_off:")
    elif not view.dead_letters:
        st.caption(t("fb_dead_none"))
    else:
        st.dataframe(dead_frame(view.dead_letters, names), hide_index=True, width="stretch")
        with st.expander(t("fb_dead_detail")):
            st.code("\n".join(f"#{d.stream_seq}  {d.subject}  {d.reason}: {d.error}"
                              for d in view.dead_letters))  # fmt: skip

    st.subheader(t("fb_contract"))
    contract_section(names, hub.published_standard())
