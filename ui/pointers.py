"""A pointer card: records the viewer may not open, shown as who holds how many, with the
request for access and (an investigator's sensitive plate reads) break-glass where the
policy offers them. Shared by the lookup and trajectory pages."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from hub.records import Pointer
from hub.security.errors import HubError
from hub.security.reasons import Reason
from ui.errors import show_error
from ui.i18n import t
from ui.text import plain

# What a request may be scoped to: a lookup by name, case or free text is too broad.
REQUEST_SCOPES = ("plate", "id_number", "phone")


def pointer_card(
    hub, principal, p: Pointer, *, names: dict[str, str], reason: Reason,
    scope: tuple[str, str] | None, key: str = "",
    after_glass: Callable[[int], None] | None = None,
) -> None:  # fmt: skip
    """One group of hidden records.

    Parameters
    ----------
    scope
        (kind, value) the request would cover — the plate, ID number or phone searched —
        or None when the search cannot scope a request.
    key
        Prefix of the widget keys, unique per page.
    after_glass
        Called with the new grant's id after break-glass (e.g. to rerun with the rows
        opened); by default a success message.
    """
    city = names.get(p.city_code, p.city_code)
    text = t("pointer_line", n=p.count, city=city, level=t("level_" + p.level))
    if p.first_day and p.last_day:
        text += t("pointer_span", start=p.first_day.isoformat(), end=p.last_day.isoformat())
    with st.container(border=True):
        st.markdown(f":material/lock: {text}")
        if not p.route.requestable:
            st.caption(t("pointer_never"))
            return
        st.caption(t("route_" + p.route.value))
        if scope is None or scope[0] not in REQUEST_SCOPES:
            return
        kind, value = scope
        with st.form(f"{key}req-{p.dataset}-{p.city_code}-{p.level}"):
            st.markdown(f"**{t('request_access')}** · {plain(value.strip())}")
            why = st.text_area(t("justification"), max_chars=1000)
            if st.form_submit_button(t("send_request")):
                try:
                    rid = hub.request_access(
                        principal, owner_city=p.city_code, level=p.level, scope_kind=kind,
                        scope_value=value, reason=reason, justification=why,
                    )  # fmt: skip
                    st.success(t("request_sent", id=rid))
                except HubError as exc:
                    show_error(exc)
        glass = (principal.role == "investigator" and kind == "plate"
                 and p.dataset == "sightings" and p.level == "sensitive")  # fmt: skip
        if glass:
            _break_glass(hub, principal, p, city=city, plate=value, reason=reason, key=key,
                         after=after_glass)  # fmt: skip


def _break_glass(hub, principal, p: Pointer, *, city: str, plate: str, reason: Reason, key: str,
                 after: Callable[[int], None] | None) -> None:  # fmt: skip
    with st.expander(f"{t('break_glass')} · {city}"), st.form(f"{key}glass-{p.city_code}"):
        st.warning(t("break_glass_warning"))
        why = st.text_area(t("justification"), max_chars=1000, key=f"{key}why-{p.city_code}")
        if st.form_submit_button(t("break_glass_confirm"), type="primary"):
            try:
                gid = hub.break_glass(principal, plate=plate, owner_city=p.city_code,
                                      reason=reason, justification=why)  # fmt: skip
            except HubError as exc:
                show_error(exc)
                return
            if after is not None:
                after(gid)
            else:
                st.success(t("break_glass_done", id=gid))
