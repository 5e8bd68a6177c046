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
# How often the requester's page asks whether the requests filed from it were decided.
DECISION_POLL_SECONDS = 5


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


def request_all(
    hub, principal, pointers: list[Pointer], *, names: dict[str, str], reason: Reason,
    scope: tuple[str, str] | None, key: str = "",
) -> None:  # fmt: skip
    """One click, one justification: a request to each owning city and level that hides
    records from this search (one per pointer group the policy lets a request open).
    The ids filed are kept for `await_decisions`."""
    if scope is None or scope[0] not in REQUEST_SCOPES:
        return
    groups = sorted({(p.city_code, p.level) for p in pointers if p.route.requestable})
    if not groups:
        return
    kind, value = scope
    with st.form(f"{key}req-all"):
        cities = "、".join(names.get(c, c) for c in dict.fromkeys(c for c, _ in groups))
        st.markdown(f"**{t('request_all_heading', n=len(groups))}** · {plain(cities)}")
        why = st.text_area(t("justification"), max_chars=1000, key=f"{key}req-all-why")
        if not st.form_submit_button(t("request_all_send", n=len(groups)), type="primary"):
            return
    filed: list[int] = []
    for city, level in groups:
        try:
            filed.append(hub.request_access(
                principal, owner_city=city, level=level, scope_kind=kind, scope_value=value,
                reason=reason, justification=why,
            ))  # fmt: skip
        except HubError as exc:
            show_error(exc)  # e.g. no justification: the same refusal for every city
            break
    if filed:
        st.session_state[f"{key}awaited"] = filed
        st.session_state.pop(f"{key}approved", None)
        st.success(t("request_all_sent", n=len(filed)), icon=":material/hourglass_top:")


def await_decisions(hub, principal, *, names: dict[str, str], reopen: Callable[[], None],
                    key: str = "") -> None:  # fmt: skip
    """While requests filed by `request_all` wait, poll their status every few seconds
    (a fragment: the page does not rerun); when another is approved, call `reopen` once
    (the same search again, under the same reason: the grant now opens the rows) and
    rerun the page so the opened rows show where the pointer was, without a click."""
    awaited = st.session_state.get(f"{key}awaited")
    if not awaited:
        return

    @st.fragment(run_every=DECISION_POLL_SECONDS)
    def poll() -> None:
        try:
            views = [v for v in hub.my_requests(principal) if v.id in set(awaited)]
        except HubError:
            return  # an ended session is signed out by the page's next check
        for v in views:
            st.caption(t("request_all_line", id=v.id, city=names.get(v.owner_city, v.owner_city),
                         level=t("level_" + v.level), status=t("status_" + v.status)))  # fmt: skip
        approved = {v.id for v in views if v.status == "approved"}
        if not approved - st.session_state.get(f"{key}approved", set()):
            if views and all(v.status != "pending" for v in views):
                st.session_state.pop(f"{key}awaited", None)  # all decided: stop asking
            return
        st.session_state[f"{key}approved"] = approved
        if all(v.status != "pending" for v in views):
            st.session_state.pop(f"{key}awaited", None)
        reopen()
        st.rerun()

    poll()
