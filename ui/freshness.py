"""How old a page's aggregates are, when they come from a read replica that lags.

The hub sends read-only aggregates (overview, explore, province counts, situation
hexagons, feed quality) to a streaming replica when one is configured (hub/replica.py).
A replica a few seconds behind is as good as the primary; past
HUB_REPLICA_LAG_NOTICE_SECONDS the page says as of when its figures are. When the replica
is down or too far behind, the hub reads the primary and there is nothing to say.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from hub.service import Hub
from ui.i18n import t
from ui.tables import local_time


def replica_text(lag_seconds: float | None, now: datetime) -> str | None:
    """The notice for a replica `lag_seconds` behind at `now`; None: nothing to show."""
    if lag_seconds is None:
        return None
    as_of = local_time(now - timedelta(seconds=lag_seconds), "%m-%d %H:%M:%S")
    return t("replica_as_of", as_of=as_of, lag=f"{lag_seconds:,.0f}")


def replica_notice(hub: Hub) -> None:
    """Under a page's title: as of when its aggregates are, if the replica lags."""
    if text := replica_text(hub.read_freshness(), datetime.now(UTC)):
        st.caption(f":material/history: {text}")
