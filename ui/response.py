"""Pieces of the joint-response board and the alerts & assists page: the deck, tables,
action rows and forms. Every action is one hub call; a refusal is one translated line."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pydeck as pdk
import streamlit as st

from geo import layers as gl
from hub.codes import codes, label
from hub.security.errors import HubError
from ui import map as hubmap
from ui.errors import show_error
from ui.frame import file_uploader
from ui.i18n import lang, t
from ui.tables import local_time
from ui.text import html_text, plain

TIP = {"html": "{tip}", "style": {"fontSize": "13px"}}
REQUEST_STATES = ("requested", "accepted", "declined", "dispatched", "en_route", "on_scene",
                  "released", "cancelled")  # fmt: skip
ACTION_ICONS = {"accepted": ":material/check:", "declined": ":material/close:",
                "dispatched": ":material/local_shipping:", "en_route": ":material/route:",
                "on_scene": ":material/pin_drop:", "released": ":material/logout:",
                "cancelled": ":material/cancel:"}  # fmt: skip


def attempt(fn: Callable[[], object], done: str | None = None) -> object | None:
    """Run one hub action; show its refusal (nothing was stored) or a short toast."""
    try:
        result = fn()
    except HubError as exc:
        show_error(exc)
        return None
    if done:
        st.toast(done, icon=":material/check_circle:")
    return result


def exercise_banner(active: bool) -> None:
    if active:
        st.warning(t("resp_exercise_banner"), icon=":material/sports_score:")


def unit_label(kind: str) -> str:
    return label("unit_kind", kind, lang())


def status_label(status: str) -> str:
    return label("unit_status", status, lang())


def event_text(row, names: dict[str, str]) -> str:
    """A timeline line in the reader's language (system events are stored as codes)."""
    if row.event is None:
        return row.text
    e = dict(row.event)
    kind = e.pop("event", "")
    e = {k: names.get(v, v) if isinstance(v, str) else v for k, v in e.items()}
    try:
        return t(f"resp_event_{kind}", **e)
    except (KeyError, IndexError):
        return t("resp_event_other", event=kind)


# --- the deck ------------------------------------------------------------------------------


def board_deck(b, names: dict[str, str], map_style: str | None) -> pdk.Deck:
    """Area, incident and units (coloured by status) on the offline base map."""
    op = b.operation
    area = {"type": "Feature", "geometry": b.area,
            "properties": {"fill": [220, 60, 20, 45], "tip": html_text(op["name"])}}  # fmt: skip
    layers: list[pdk.Layer] = [gl.city_layer(pickable=False), gl.district_layer(),
                               gl.polygon_layer([area], layer_id="operation-area")]  # fmt: skip
    if len(b.units):
        u = b.units.assign(
            tip=b.units.callsign.map(html_text) + " · " + b.units.kind.map(unit_label) + " · "
            + b.units.status.map(status_label) + " · " + b.units.city_code.map(names)
            + " · ETA " + b.units.eta_min.map(lambda v: "—" if pd.isna(v) else f"{v:.0f} min"),
            color=b.units.status.map(gl.UNIT_STATUS_COLORS).map(
                lambda c: c if isinstance(c, list) else gl.OFFLINE_COLOR),
        )  # fmt: skip
        layers.append(gl.scatter_layer(u, layer_id="units", radius_px=6))
    if b.incident is not None:
        inc = pd.DataFrame([b.incident]).assign(
            tip=label("incident_type", b.incident["type_code"], lang()) + " · "
            + label("severity", str(b.incident["severity"]), lang()),
        )  # fmt: skip
        layers.append(gl.incident_marker_layer(inc))
    layers.append(gl.label_layer("city", names=names))
    # Fit the area and the listed units (the nearest first), at most 60 km out.
    far = float(b.units.distance_km.max() * 1000) if len(b.units) else 0.0
    view = gl.view_around(op["lon"], op["lat"], min(max(op["radius_m"] + 5_000, far), 60_000))
    return hubmap.deck(layers, map_style=map_style, tooltip=TIP, view=view)


# --- tables -----------------------------------------------------------------------------------


def units_table(b, names: dict[str, str]) -> pd.DataFrame:
    """The units in reach, soonest first, in four columns narrow enough for the board's
    side column on a 1,024 px screen: the callsign, the estimated arrival (minutes, then
    the straight-line distance), the status (or this operation's request step) and the
    kind with its city. Seven columns of numbers and long headers were cut off at the
    estimated arrival at 1,600 px (issue 16)."""
    _board_layout()
    u = b.units

    def eta(row) -> str:
        if pd.isna(row.eta_min):
            return "—"
        return t("board_eta_cell", min=f"{row.eta_min:.0f}", km=f"{row.distance_km:.1f}")

    def state(row) -> str:
        s = row.request_status
        return t(f"resp_state_{s}") if isinstance(s, str) else status_label(row.status)

    return pd.DataFrame({
        t("resp_col_callsign"): u.callsign,
        t("board_col_eta"): [eta(r) for r in u.itertuples()],
        t("resp_col_status"): [state(r) for r in u.itertuples()],
        t("board_col_unit"): u.kind.map(unit_label) + " · " + u.city_code.map(
            lambda c: names.get(c, c)),
    })  # fmt: skip


# The board's map and units table sit side by side ([3, 2] columns); where the table's
# column is narrower than its four columns (a 1,024 px screen, or 1,600 px with the
# sidebar open) both take the full width, the table under the map, so no column is cut off.
_BOARD_CSS = """<style>
div[data-testid='stHorizontalBlock']:has([data-testid='stDeckGlJsonChart']):has(
    [data-testid='stDataFrame']) { container-type: inline-size; flex-wrap: wrap; }
@container (max-width: 1199px) {
  div[data-testid='stColumn']:has([data-testid='stDeckGlJsonChart']),
  div[data-testid='stColumn']:has([data-testid='stDataFrame']) {
    flex: 1 1 100% !important; width: 100% !important; min-width: 100% !important; }
}
</style>"""


def _board_layout() -> None:
    st.html(_BOARD_CSS)


def request_rows(hub, principal, b, names: dict[str, str]) -> None:
    """One line per resource request with a button for each step this viewer may take."""
    if b.requests.empty:
        st.caption(t("resp_no_requests"))
        return
    for r in b.requests.itertuples():
        c = st.columns([5, 5], vertical_alignment="center")
        when = local_time(r.requested_at, "%H:%M")
        c[0].markdown(
            f"**{plain(r.callsign)}** · {unit_label(r.kind)} · {names.get(r.owner_city, r.owner_city)} "
            f"→ {names.get(r.requesting_city, r.requesting_city)} · {when} · "
            f":blue-badge[{t('resp_state_' + r.status)}]"
        )
        buttons = c[1].columns(max(len(r.actions), 1))
        for i, action in enumerate(r.actions):
            if buttons[i].button(t(f"resp_do_{action}"), key=f"rr-{r.id}-{action}",
                                 icon=ACTION_ICONS.get(action)):  # fmt: skip
                attempt(lambda r=r, a=action: hub.act_on_request(principal, int(r.id), a),
                        t("resp_done"))  # fmt: skip
                st.rerun(scope="fragment")


def unit_picker(hub, principal, b, names: dict[str, str]) -> None:
    """Choose a unit in reach: the own city's are dispatched, another city's requested."""
    free = b.units[b.units.request_status.isna()]
    if free.empty or b.my_status not in ("lead", "accepted"):
        return
    options = {int(u.id): u for u in free.itertuples()}

    def fmt(i: int) -> str:
        u = options[i]
        eta = "—" if pd.isna(u.eta_min) else f"{u.eta_min:.0f} min"
        return (f"{u.callsign} · {unit_label(u.kind)} · {status_label(u.status)} · "
                f"{names.get(u.city_code, u.city_code)} · ETA {eta}")  # fmt: skip

    c = st.columns([5, 3, 2], vertical_alignment="bottom")
    unit_id = c[0].selectbox(t("resp_pick_unit"), list(options), format_func=fmt, key="resp_unit")
    note = c[1].text_input(t("resp_note"), max_chars=500, key="resp_note")
    own = options[unit_id].city_code == principal.city_code
    if c[2].button(t("resp_dispatch" if own else "resp_request"), type="primary",
                   key="resp_unit_go", icon=":material/send:"):  # fmt: skip
        op_id = int(b.operation["id"])
        if own:
            attempt(lambda: hub.dispatch_unit(principal, op_id, unit_id), t("resp_done"))
        else:
            attempt(lambda: hub.request_unit(principal, op_id, unit_id, note=note or None),
                    t("resp_done"))  # fmt: skip
        st.rerun(scope="fragment")


def timeline(hub, principal, b, names: dict[str, str]) -> None:
    if b.my_status in ("lead", "accepted") and b.operation["status"] == "active":
        with st.form("resp_entry", clear_on_submit=True, border=False):
            c = st.columns([6, 2, 2], vertical_alignment="bottom")
            text = c[0].text_input(t("resp_entry"), max_chars=1000)
            significant = c[1].checkbox(t("resp_significant"))
            if c[2].form_submit_button(t("resp_add_entry")):
                attempt(lambda: hub.add_timeline_entry(principal, int(b.operation["id"]), text,
                                                       significant=significant), t("resp_done"))  # fmt: skip
    for row in b.timeline.head(60).itertuples():
        star = ":orange[:material/star:] " if row.significant else ""
        who = plain(row.author) if row.author else t("resp_system")
        st.markdown(f"`{local_time(row.ts, '%m-%d %H:%M:%S')}` {star}**{who}** "
                    f"({names.get(row.city_code or '', '—')}): {plain(event_text(row, names))}")  # fmt: skip


# Session key through which an incident clicked on the situation map prefills the form.
OPERATION_FROM_MAP = "resp_from_map"


def new_operation_form(hub, principal, names: dict[str, str], prefill: dict | None = None
                       ) -> int | None:  # fmt: skip
    """The form that opens an operation; returns the new id. `prefill` (an incident clicked
    on the situation map: its number, lon and lat) fills the incident and the centre."""
    prefill = prefill or {}
    if prefill:
        st.info(t("resp_prefilled", id=prefill["incident_id"]), icon=":material/map:")
    with st.form("resp_new", border=True):
        c = st.columns([4, 2, 2])
        default_name = t("resp_op_name_incident", id=prefill["incident_id"]) if prefill else ""
        name = c[0].text_input(t("resp_op_name"), value=default_name, max_chars=120)
        kinds = {"incident": t("resp_kind_incident"), "planned_event": t("resp_kind_planned_event")}
        kind = c[1].selectbox(t("resp_op_kind"), list(kinds), format_func=kinds.get)
        radius_km = c[2].number_input(t("resp_radius_km"), 0.1, 50.0, 3.0, step=0.5)
        c = st.columns(4)
        incident = c[0].number_input(t("resp_incident_id"), min_value=0, step=1,
                                     value=prefill.get("incident_id", 0),
                                     help=t("resp_incident_help"))  # fmt: skip
        zone = c[1].number_input(t("resp_zone_id"), min_value=0, step=1, value=0)
        lon, lat = (
            col.number_input(t(label), low, high, min(max(prefill.get(name, start), low), high),
                             format="%.5f")
            for col, label, name, low, high, start in (
                (c[2], "resp_lon", "lon", 114.5, 120.0, 117.27),
                (c[3], "resp_lat", "lat", 29.0, 35.5, 31.86),
            )
        )  # fmt: skip
        others = [c for c in names if c != principal.city_code]
        invite = st.multiselect(t("resp_invite"), others, format_func=names.get,
                                placeholder=t("pick_cities"))  # fmt: skip
        objectives = st.text_area(t("resp_objectives"), max_chars=1000, height=70)
        submitted = st.form_submit_button(t("resp_create"), type="primary")
    if not submitted:
        return None
    return attempt(lambda: hub.create_operation(
        principal, name=name, kind=kind, radius_m=radius_km * 1000,
        incident_id=int(incident) or None, risk_zone_id=int(zone) or None,
        lon=lon, lat=lat, invite=invite, objectives=objectives,
    ), t("resp_created"))  # fmt: skip


def briefing_downloads(hub, principal, op_id: int, names: dict[str, str]) -> None:
    """Prepare (an audited export), then download as Markdown or JSON."""
    from hub.response import briefing_markdown

    if st.button(t("resp_prepare_briefing"), icon=":material/description:", key="resp_brief"):
        brief = attempt(lambda: hub.operation_briefing(principal, op_id, names))
        if brief is not None:
            st.session_state["resp_briefing"] = (op_id, brief)
    kept = st.session_state.get("resp_briefing")
    if kept is None or kept[0] != op_id:
        return
    brief = kept[1]
    labels = {k: t(f"resp_brief_{k}") for k in ("title", "exercise", "prepared", "situation",
              "objectives", "organisation", "resources", "events", "lead", "none")}  # fmt: skip
    c = st.columns(2)
    c[0].download_button(t("resp_download_md"), briefing_markdown(brief, labels),
                         file_name=f"ICS201-operation-{op_id}.md", mime="text/markdown")  # fmt: skip
    c[1].download_button(t("resp_download_json"),
                         json.dumps(brief, ensure_ascii=False, indent=2, default=str),
                         file_name=f"ICS201-operation-{op_id}.json", mime="application/json")  # fmt: skip


def exercise_starter(hub, principal) -> None:
    """Start a shipped scenario (commanders); it plays on refresh of the live pages."""
    scenarios = hub.exercises()
    if not scenarios:
        return
    with st.popover(t("resp_exercise_start"), icon=":material/sports_score:"):
        i = 0 if lang() == "zh" else 1
        name = st.selectbox(t("resp_exercise_pick"), list(scenarios),
                            format_func=lambda n: scenarios[n][i])  # fmt: skip
        speed = st.select_slider(t("resp_exercise_speed"), [1.0, 2.0, 5.0, 10.0], value=5.0)
        if st.button(t("resp_exercise_go"), type="primary", key="resp_ex_go"):
            attempt(lambda: hub.start_exercise(principal, name, speed=speed),
                    t("resp_exercise_started"))  # fmt: skip


def level_label(level: str) -> str:
    return label("risk_level", level, lang())


def risk_levels() -> list[str]:
    return [c.code for c in codes("risk_level")]


def eido_import(hub, principal) -> None:
    """Take in an incident another city shared as EIDO-like JSON (`hub.exchange`)."""
    with st.expander(t("eido_import"), icon=":material/move_to_inbox:"):
        st.caption(t("eido_import_help"))
        upload = file_uploader(t("eido_file"), key="eido_upload", types=["json"],
                                max_mb=hub.settings.upload_max_mb)  # fmt: skip
        if upload is None or not st.button(t("eido_import_go"), key="eido_go"):
            return
        try:
            eido = json.loads(upload.getvalue().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            st.error(t("eido_not_json"), icon=":material/block:")
            return
        done = attempt(lambda: hub.import_incident(principal, eido))
        if done is not None:
            incident_id, new = done
            st.success(t("eido_imported" if new else "eido_already", id=incident_id))
