"""The notification badge every page shows: what waits on the person, refreshed every few
seconds as a fragment (the page itself does not rerun), a toast for each new item, and
each notice a link to its item. Sound-free by design: a command room is loud enough."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import streamlit as st

from hub.notify import Notice
from hub.security.errors import HubError
from hub.security.policy import Principal
from ui.hub import get_hub
from ui.i18n import t
from ui.registry import PAGES_BY_KEY
from ui.text import plain

REFRESH_SECONDS = 5
TOASTS_PER_CHECK = 3
SHOWN = 20
_SHOWN = "notices_shown"
_APPLIED = "notices_link_applied_"
T = TypeVar("T")
ICONS = {
    "request_to_decide": ":material/approval:",
    "request_decided": ":material/task_alt:",
    "operation_invitation": ":material/group_add:",
    "unit_request": ":material/local_police:",
    "alert": ":material/campaign:",
    "watch_hit": ":material/notifications_active:",
    "assist_request": ":material/travel_explore:",
}


def notice_text(n: Notice, names: dict[str, str]) -> str:
    """The notice's sentence (`notice_<kind>`); codes become names, text stays text."""
    params = {k: plain(v) if isinstance(v, str) else v for k, v in n.params.items()}
    for key in ("city", "from_city"):
        if key in n.params:
            params[key] = plain(names.get(str(n.params[key]), n.params[key]))
    if "level" in n.params:
        params["level"] = t("level_" + str(n.params["level"]))
    if "status" in n.params:
        params["status"] = t("status_" + str(n.params["status"]))
    return t(f"notice_{n.kind}", id=n.item_id, **params)


def toasts(new: Sequence[Notice], names: dict[str, str]) -> list[tuple[str, str | None]]:
    """The toasts of a check's new notices: one per sentence, with how many said it (a
    car read by three cameras of the city it entered is one toast, not three), at most
    `TOASTS_PER_CHECK`, the last saying how many more wait in the badge."""
    groups: dict[str, list[Notice]] = {}
    for n in new:
        groups.setdefault(notice_text(n, names), []).append(n)
    out = [(t("notice_repeated", text=text, n=len(ns)) if len(ns) > 1 else text,
            ICONS.get(ns[0].kind)) for text, ns in groups.items()]  # fmt: skip
    if len(out) <= TOASTS_PER_CHECK:
        return out
    rest = sum(len(ns) for ns in list(groups.values())[TOASTS_PER_CHECK - 1 :])
    return [
        *out[: TOASTS_PER_CHECK - 1],
        (t("notice_more_new", n=rest), ":material/notifications:"),
    ]


def _link(n: Notice, names: dict[str, str], role: str) -> None:
    target = dict(n.target)
    spec = PAGES_BY_KEY.get(str(target.pop("page", "")))
    label = notice_text(n, names)
    if spec is None or role not in spec.roles:
        st.markdown(label)
        return
    st.page_link(spec.file, label=label, icon=ICONS.get(n.kind),
                 query_params={k: str(v) for k, v in target.items()})  # fmt: skip


def notice_badge(principal: Principal) -> None:
    """The badge (a popover listing what waits, each a link) and the toasts of new items;
    call once per page from the frame."""

    @st.fragment(run_every=REFRESH_SECONDS)
    def badge() -> None:
        try:
            check = get_hub().notices.check(principal)
        except HubError:
            return  # an ended session is signed out by the page's next check
        from ui.frame import city_names  # the frame shows this badge: imported when drawn

        # What is new is what the previous check did not list, not what is younger than
        # it: an item stamped before that check but committed after it (a hit is stamped
        # when its match begins) would otherwise never be toasted.
        before = st.session_state.get(_SHOWN)
        st.session_state[_SHOWN] = {(n.kind, n.item_id) for n in check.notices}
        names = city_names()
        if before is not None:
            new = [n for n in check.notices if (n.kind, n.item_id) not in before]
            for text, icon in toasts(new, names):
                st.toast(text, icon=icon)
        label = t("notice_badge", n=check.count) if check.count else t("notice_badge_none")
        with st.popover(label, icon=":material/notifications:"):
            for n in check.notices[:SHOWN]:
                _link(n, names, principal.role)
            if check.count > SHOWN:
                st.caption(t("notice_more", n=check.count - SHOWN))
            if check.count and st.button(t("notice_mark_seen"), key="notices_seen"):
                try:
                    get_hub().notices.mark_seen(principal)
                except HubError:
                    return
                st.rerun(scope="fragment")

    badge()


def linked_item(param: str) -> int | None:
    """The item a notice's deep link names (`?<param>=<id>`), or None: a page reads it
    to open that item first; the page's own access checks still decide what is shown."""
    value = st.query_params.get(param)
    return int(value) if value is not None and str(value).isdigit() else None


def select_linked(param: str, state_key: str, ids: Collection[int]) -> int | None:
    """Open the linked item: put its id in `state_key` (a selectbox's key or the page's
    "chosen" slot) the first time the page sees this link, so the person may then pick
    another without the link pulling them back. Call before the widget is drawn.
    Returns the linked id when it is among `ids` (the items this viewer may see)."""
    item = linked_item(param)
    if item is None or item not in ids:
        return None
    if st.session_state.get(_APPLIED + param) != item:
        st.session_state[_APPLIED + param] = item
        st.session_state[state_key] = item
    return item


def linked_first(items: Sequence[T], linked: int | None, key: Callable[[T], int]) -> list[T]:
    """The items with the linked one first (the item a notice named is the one on top)."""
    return sorted(items, key=lambda x: key(x) != linked) if linked is not None else list(items)
