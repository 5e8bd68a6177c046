"""The structured-reason form, remembered for the session's next lookups of the same case."""

from __future__ import annotations

import streamlit as st

from hub.codes import codes
from hub.security.reasons import Reason
from ui.i18n import lang, t

_KEY = "reason"


def reason_form(*, narrow: bool = False) -> Reason | None:
    """Purpose + open case number (+ optional note); None until both are given.

    `narrow`: the fields one under the other, for a side panel (three columns there
    squeeze the purpose to a few pixels)."""
    remembered: Reason | None = st.session_state.get(_KEY)
    purposes = codes("purpose")
    labels = {c.code: c.label(lang()) for c in purposes}
    with st.container(border=True):
        st.markdown(f"**{t('reason_heading')}**")
        c1, c2, c3 = (st, st, st) if narrow else st.columns([1, 1, 2])
        codes_list = list(labels)
        purpose = c1.selectbox(
            t("purpose"), codes_list, format_func=labels.__getitem__,
            index=codes_list.index(remembered.purpose) if remembered else 0,
        )  # fmt: skip
        case_no = c2.text_input(
            t("case_no"), value=remembered.case_no if remembered else "", max_chars=32
        )
        note = c3.text_input(
            t("reason_note"), value=remembered.note if remembered else "", max_chars=500
        )
    if not case_no.strip():
        st.caption(t("reason_needed"))
        return None
    reason = Reason(purpose, case_no.strip(), note.strip())
    st.session_state[_KEY] = reason
    return reason
