"""What the Feeds and Quality pages show of feed batches: codes as people read them,
rejection reasons as sentences, percentages and hours with a dash where there is none."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.i18n import catalogue, t
from ui.tables import localise, record_table

MISSING = "—"
PCT = ["completeness", "validity", "duplicate_share"]


def label(prefix: str, value: str) -> str:
    """A code as people read it; the code itself when the catalogue has no label yet."""
    return t(prefix + value) if prefix + value in catalogue() else value


def reason_line(reasons: list[dict]) -> str:
    """A rejected row's reasons as one line of sentences."""
    out = []
    for r in reasons:
        try:
            out.append(t(f"rej_{r['code']}", **r))
        except KeyError:  # a code the catalogue does not know yet
            out.append(r["code"])
    return "；".join(out)


def feed_label(city: str, dataset: str, names: dict[str, str]) -> str:
    return f"{names.get(city, city)} · {label('dataset_', dataset)}"


def readable(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Batches or scorecard rows for display: names, labels, %, hours, dashes."""
    frame = frame.copy()
    if "city_code" in frame:
        frame["city_code"] = frame["city_code"].map(lambda c: names.get(c, c))
    if "dataset" in frame:
        frame["dataset"] = frame["dataset"].map(lambda d: label("dataset_", d))
    if "status" in frame:
        frame["status"] = frame["status"].map(lambda s: label("feed_status_", s))
    for c in PCT:
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1%}")
    for c in ("lag_p50_h", "lag_p90_h", "freshness_h"):
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1f}")
    shown = localise(frame.rename(columns={"dataset": "dataset_name"})).astype(object)
    return shown.where(shown.notna(), MISSING)


def rejects_table(hub, principal, batch_id: int) -> None:
    """A batch's rejected rows with their reasons as sentences, and the reject file."""
    rejects = hub.feed_rejects(principal, batch_id)
    rejects["reasons"] = rejects["reasons"].map(reason_line)
    record_table(hub, principal, localise(rejects))
    st.download_button(t("feeds_reject_download"), hub.reject_file(principal, batch_id),
                       file_name=f"rejects-batch-{batch_id}.csv", mime="text/csv")  # fmt: skip
