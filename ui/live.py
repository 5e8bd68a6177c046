"""The situation map's live mode: the tail of what arrived since the page opened, asked
every few seconds from a fragment (the page does not rerun), and the live path's health —
the bus up or down, and how fresh each city's stream is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from hub.situation import Situation
from ui.errors import error_text
from ui.i18n import t
from ui.tables import local_time

REFRESH_SECONDS = 5
TAIL = "sit_live_tail"
_BUS = "sit_live_bus"
# The bus is asked at most this often: when it is down the question takes its timeout.
BUS_EVERY_SECONDS = 15


def tail(hub, principal, sit: Situation, minutes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(incidents, hits) that arrived since the answer `sit` was read and are still inside
    the last `minutes`; each refresh asks only for what is newer than its last look."""
    state = st.session_state.get(TAIL)
    if state is None or state["answer"] != sit.audit_seq or state["at"] != sit.now:
        state = {"answer": sit.audit_seq, "at": sit.now, "since": sit.now,
                 "incidents": pd.DataFrame(), "hits": pd.DataFrame()}  # fmt: skip
    try:
        got = hub.cop.live_tail(principal, minutes=minutes, since=state["since"],
                                cities=sit.query.cities)  # fmt: skip
    except HubError as exc:
        st.error(error_text(exc), icon=":material/block:")
        return state["incidents"], state["hits"]
    floor = pd.Timestamp(datetime.now(UTC) - timedelta(minutes=minutes))
    incidents = _merge(got.incidents, state["incidents"])
    if len(incidents):
        incidents = incidents[pd.to_datetime(incidents["ts"], utc=True) >= floor]
    hits = _merge(got.hits, state["hits"])
    st.session_state[TAIL] = {**state, "since": got.checked_at, "incidents": incidents,
                              "hits": hits}  # fmt: skip
    return incidents, hits


def _merge(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    if old.empty:
        return new.reset_index(drop=True)
    if new.empty:
        return old
    return pd.concat([new, old], ignore_index=True).drop_duplicates("id")


def _bus_up(hub) -> bool:
    """Whether the live feed answers, asked at most every `BUS_EVERY_SECONDS`."""
    seen = st.session_state.get(_BUS)
    if seen is not None and time.monotonic() - seen[0] < BUS_EVERY_SECONDS:
        return seen[1]
    try:
        up = hub.live.bus_status().up
    except Exception:  # no credentials or no bus configured: no live feed either way
        up = False
    st.session_state[_BUS] = (time.monotonic(), up)
    return up


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return t("cop_fresh_never")
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 120:
        return t("cop_fresh_seconds", n=seconds)
    if seconds < 7200:
        return t("cop_fresh_minutes", n=seconds // 60)
    return t("cop_fresh_hours", n=seconds // 3600)


def status_strip(hub, names: dict[str, str], live: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """ "Live feed down" when the bus does not answer; the newest stream batch per city
    (stale ones in orange); how many incidents and hits arrived since the page opened."""
    now = datetime.now(UTC)
    up = _bus_up(hub)
    if not up:
        st.error(t("cop_bus_down"), icon=":material/cloud_off:")
    try:
        fresh = hub.live.freshness(now=now)
    except Exception:  # as above: without a live path there is no stream to be fresh
        fresh = []
    newest: dict[str, tuple[datetime | None, bool]] = {}
    for f in fresh:
        last, stale = newest.get(f.city_code, (None, True))
        if f.last_batch_at is not None and (last is None or f.last_batch_at > last):
            last = f.last_batch_at
        newest[f.city_code] = (last, stale and f.stale)
    # City names (reference data) and catalogue words only.
    tags = []
    for city, (last, stale) in sorted(newest.items()):
        tag = f"{names.get(city, city)} {_age(last, now)}"
        tags.append(f":orange[{tag}]" if stale else tag)
    incidents, hits = live
    st.markdown(
        t("cop_live_status", time=local_time(now, "%H:%M:%S"), n=len(incidents), hits=len(hits))
        + " "
        + " · ".join(tags)
    )
