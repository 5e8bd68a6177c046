"""The situation map's pieces: the filter bar, the deck for one moment, the feature panel.

The page asks the hub once per query (one audited map view); moving the playback slider,
switching hexagons / points / heat or clicking a feature reuses that answer. The common
operating picture's overlays (operations, alert areas, watch hits, the watched cars), a
hexagon's drill-down and the live tail are further hub questions (`hub.cop`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pydeck as pdk
import streamlit as st

from geo import layers as gl
from geo.boundaries import load_boundaries
from hub.codes import code_values, label
from hub.cop import LIVE_MINUTES, OVERLAY_ROLES, OVERLAYS, CellIncidents, Overlays
from hub.response import RESPONSE_ROLES
from hub.security.errors import HubError
from hub.security.reasons import INCIDENT_ROLES, Reason
from hub.situation import DEFAULT_LAYERS, LAYERS, POINT_LIMIT, Situation, SituationQuery, window
from ui import map as hubmap
from ui.errors import error_text
from ui.i18n import lang, t
from ui.reason import reason_form
from ui.registry import PAGES_BY_KEY
from ui.response import OPERATION_FROM_MAP
from ui.tables import LOCAL_TZ, local_time, local_times, localise, record_table
from ui.text import html_text, plain

WINDOW_KEYS = ("1h", "6h", "24h", "7d", "custom")
MODES = ("hexagons", "points", "heat")
TIP = {"html": "{tip}", "style": {"fontSize": "13px"}}
MAP_HEIGHT = 720


def districts_of(cities: list[str]) -> dict[str, str]:
    d = load_boundaries().districts
    if cities:
        d = d[d.parent_adcode.isin(cities)]
    return dict(zip(d.adcode, d.name, strict=True))


def place_filters(city_col, district_col, names: dict[str, str], prefix: str):
    """Cities, then the districts of the chosen cities (all of them when none is chosen)."""
    cities = city_col.multiselect(t("sit_cities"), list(names), format_func=names.get,
                                  placeholder=t("sit_all_province"), key=f"{prefix}_cities")  # fmt: skip
    dnames = districts_of(cities)
    districts = district_col.multiselect(t("sit_districts"), list(dnames), format_func=dnames.get,
                                         placeholder=t("sit_all"), key=f"{prefix}_districts")  # fmt: skip
    return cities, districts


def kind_filters(prefix: str) -> tuple[list[str], list[int]]:
    """Incident types and severities, labelled from the code tables."""
    types = st.multiselect(t("sit_types"), code_values("incident_type"),
                           format_func=lambda v: label("incident_type", v, lang()),
                           placeholder=t("sit_all"), key=f"{prefix}_types")  # fmt: skip
    sev = st.multiselect(t("sit_severity"), [1, 2, 3, 4],
                         format_func=lambda v: label("severity", str(v), lang()),
                         placeholder=t("sit_all"), key=f"{prefix}_sev")  # fmt: skip
    return types, sev


def _custom_window(now_local: datetime) -> tuple[datetime, datetime]:
    tz = ZoneInfo(LOCAL_TZ)
    c = st.columns(4)
    d0 = c[0].date_input(t("sit_from"), now_local.date() - timedelta(days=1), key="sit_d0")
    t0 = c[1].time_input(t("sit_from_time"), time(0, 0), key="sit_t0", step=3600)
    d1 = c[2].date_input(t("sit_to"), now_local.date(), key="sit_d1")
    t1 = c[3].time_input(t("sit_to_time"), now_local.time().replace(second=0, microsecond=0),
                         key="sit_t1", step=3600)  # fmt: skip
    return datetime.combine(d0, t0, tz), datetime.combine(d1, t1, tz)


@dataclass(frozen=True)
class MapChoice:
    """How the answer is drawn: the display mode, the overlays, and the live window in
    minutes (None: not live)."""

    mode: str
    overlays: tuple[str, ...]
    live_minutes: int | None


def overlay_options(role: str) -> list[str]:
    """The overlays this role may ask for (the hub checks again)."""
    return [o for o in OVERLAYS if role in OVERLAY_ROLES[o]]


def query_bar(
    names: dict[str, str], now: datetime, role: str
) -> tuple[SituationQuery | None, MapChoice]:
    """The filters as a query (None when the custom window is refused, shown inline) and
    how to draw it. Commanders get units and every overlay on by default."""
    kinds = {k: t(f"sit_window_{k}") for k in WINDOW_KEYS}
    modes = {m: t(f"sit_mode_{m}") for m in MODES}
    c = st.columns([5, 3, 2, 2], vertical_alignment="bottom")
    live = c[3].toggle(t("cop_live"), key="sit_live", help=t("cop_live_help"))
    if live:
        minutes = {k: t("cop_live_minutes", n=k) for k in LIVE_MINUTES}
        live_minutes = c[0].segmented_control(t("cop_live_window"), list(minutes),
                                              format_func=minutes.get, default=LIVE_MINUTES[-1],
                                              key="sit_live_minutes") or LIVE_MINUTES[-1]  # fmt: skip
        kind = "custom"
    else:
        live_minutes = None
        kind = c[0].segmented_control(t("sit_window"), list(kinds), format_func=kinds.get,
                                      default="24h", key="sit_window") or "24h"  # fmt: skip
    mode = c[1].segmented_control(t("sit_mode"), list(modes), format_func=modes.get,
                                  default="hexagons", key="sit_mode") or "hexagons"  # fmt: skip
    playback = c[2].toggle(t("sit_playback"), key="sit_playback", disabled=live)
    c = st.columns([3, 3, 4], vertical_alignment="bottom")
    cities, districts = place_filters(c[0], c[1], names, "sit")
    commander = role == "commander"
    with c[2].expander(t("sit_more_filters")):
        types, sev = kind_filters("sit")
        layer_names = {k: t(f"sit_layer_{k}") for k in LAYERS}
        default = sorted(DEFAULT_LAYERS | ({"units"} if commander else set()))
        layers = st.multiselect(t("sit_layers"), list(layer_names), format_func=layer_names.get,
                                default=default, placeholder=t("pick_layers"),
                                key="sit_layers")  # fmt: skip
        offered = {o: t(f"cop_layer_{o}") for o in overlay_options(role)}
        overlays = st.multiselect(t("cop_overlays"), list(offered), format_func=offered.get,
                                  default=list(offered), placeholder=t("pick_layers"),
                                  key="sit_overlays")  # fmt: skip
        custom = (
            _custom_window(now.astimezone(ZoneInfo(LOCAL_TZ)))
            if kind == "custom" and not live else None
        )  # fmt: skip
    choice = MapChoice(mode, tuple(overlays), live_minutes)
    try:
        if live:
            start, end = now - timedelta(minutes=live_minutes), now + timedelta(minutes=1)
        else:
            start, end = window(kind, now, *(custom or (None, None)))
    except HubError as exc:
        st.error(error_text(exc), icon=":material/event_busy:")
        return None, choice
    query = SituationQuery(
        start=start, end=end, cities=tuple(cities), districts=tuple(districts),
        types=tuple(types), severities=tuple(sev), layers=frozenset(layers),
        points=mode == "points" or live, by_hour=playback and not live,
    )  # fmt: skip
    return query, choice


# --- tooltips (one `tip` text per feature; the deck shows it on hover) ----------------------


def _code(table: str, values: pd.Series) -> pd.Series:
    labels = {v: label(table, str(v), lang()) for v in values.unique()}
    return values.map(labels)


def _points(sit: Situation, names: dict[str, str], upto: datetime | None) -> pd.DataFrame:
    p = sit.points
    if upto is not None:
        p = p[p.ts < upto]
    return p.assign(
        tip=_code("incident_type", p.type_code) + " · " + _code("severity", p.severity.astype(str))
        + " · " + local_times(p.ts) + " · " + p.city_code.map(names),
        color=p.severity.map(gl.SEVERITY_COLORS),
    )  # fmt: skip


def _cells(sit: Situation, upto: datetime | None) -> pd.DataFrame:
    h = sit.hexes
    if "hour" in h and upto is not None:
        h = h[h.hour < upto]
    if "hour" in h:
        h = h.groupby("h3", as_index=False).agg(
            count=("count", "sum"), max_severity=("max_severity", "max")
        )
    tip = t("sit_tip_cell", n="\x00", sev="\x01")  # one lookup, then plain string work
    return h.assign(tip=[tip.replace("\x00", str(n)).replace("\x01", str(s))
                         for n, s in zip(h["count"], h["max_severity"], strict=True)])  # fmt: skip


def _cameras(sit: Situation) -> pd.DataFrame:
    c = sit.cameras
    kinds = _code("camera_kind", c.kind)
    states = {s: t(f"sit_cam_{s}") for s in ("online", "offline")}
    status = c.status.map(lambda s: states.get(s, s))
    border = c.at_border.map({True: " · " + t("sit_border_checkpoint"), False: ""})
    colors = [gl.OFFLINE_COLOR if s != "online" else gl.CAMERA_COLORS.get(k, gl.OFFLINE_COLOR)
              for k, s in zip(c.kind, c.status, strict=True)]  # fmt: skip
    return c.assign(
        tip=c.name.map(html_text) + " · " + kinds + " · " + status + border, color=colors
    )


def _zones(sit: Situation) -> list[dict]:
    features = []
    for z in sit.risk_zones.itertuples():
        level_label = label("risk_level", z.level, lang())
        features.append({
            "type": "Feature", "geometry": json.loads(z.geometry),
            "properties": {"id": int(z.id), "fill": gl.RISK_COLORS.get(z.level, [200, 0, 0, 60]),
                           "tip": f"{html_text(z.name)} · {level_label}<br/>{html_text(z.reason)}"},
        })  # fmt: skip
    return features


def _help(sit: Situation, upto: datetime | None) -> pd.DataFrame:
    h = sit.help_requests
    if upto is not None:
        h = h[h.ts < upto]
    return h.assign(tip=t("sit_layer_help_requests") + " · " + _code("help_kind", h.kind) + " · "
                    + h.status.map(html_text) + " · " + local_times(h.ts))  # fmt: skip


def _units(sit: Situation) -> pd.DataFrame:
    u = sit.units
    return u.assign(tip=u.callsign.map(html_text) + " · " + _code("unit_kind", u.kind) + " · "
                    + _code("unit_status", u.status))  # fmt: skip


def _operations(ov: Overlays) -> pd.DataFrame:
    o = ov.operations
    kinds = {k: t(f"cop_operation_{k}") for k in ("incident", "planned_event")}
    return o.assign(tip=t("cop_layer_operations") + " · " + o["name"].map(html_text) + " · "
                    + o["kind"].map(lambda k: kinds.get(k, k)))  # fmt: skip


def _alert_areas(ov: Overlays) -> pd.DataFrame:
    a = ov.alert_areas
    return a.assign(
        tip=t("cop_layer_alert_areas") + " · " + a["title"].map(html_text) + " · "
        + _code("risk_level", a["level"]) + " · " + local_times(a["ts"]),
        line=a["level"].map(lambda v: gl.ALERT_LINE.get(v, gl.ALERT_LINE["high"])),
    )  # fmt: skip


def hits_frame(hits: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Watch hits with their tooltip (plate, city, time of the read)."""
    return hits.assign(
        tip=t("cop_layer_watch_hits") + " · " + hits["plate"].map(html_text) + " · "
        + hits["city_code"].map(lambda c: names.get(c, c)) + " · " + local_times(hits["ts"])
    )  # fmt: skip


def _tracked(ov: Overlays, names: dict[str, str]) -> pd.DataFrame:
    v = ov.tracked
    return v.assign(
        id=v["watch_id"],
        tip=t("cop_layer_tracked") + " · " + v["plate"].map(html_text) + " · "
        + v["city_code"].map(lambda c: names.get(c, c)) + " · " + local_times(v["ts"]),
    )  # fmt: skip


def live_incidents(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Incidents that arrived while the page was open, with their tooltip."""
    return frame.assign(
        tip=t("cop_live_new") + " · " + _code("incident_type", frame.type_code) + " · "
        + _code("severity", frame.severity.astype(str)) + " · " + local_times(frame.ts)
        + " · " + frame.city_code.map(names),
    )  # fmt: skip


def overlay_layers(ov: Overlays | None, names: dict[str, str]) -> list[pdk.Layer]:
    """Operations and alert areas as circles, the watched cars and hits as dots."""
    if ov is None:
        return []
    layers = []
    if len(ov.alert_areas):
        layers.append(gl.area_layer(_alert_areas(ov), layer_id="alert-areas",
                                    fill=[255, 80, 0, 25]))  # fmt: skip
    if len(ov.operations):
        layers.append(gl.area_layer(_operations(ov), layer_id="operations",
                                    fill=gl.OPERATION_COLOR, line=gl.OPERATION_LINE))  # fmt: skip
    if len(ov.hits):
        layers.append(gl.scatter_layer(hits_frame(ov.hits, names), layer_id="watch-hits",
                                       color=gl.HIT_COLOR, radius_px=7))  # fmt: skip
    if len(ov.tracked):
        layers.append(gl.scatter_layer(_tracked(ov, names), layer_id="tracked",
                                       color=gl.TRACKED_COLOR, radius_px=9,
                                       line_color=gl.HIT_COLOR))  # fmt: skip
    return layers


def build_deck(
    sit: Situation,
    mode: str,
    names: dict[str, str],
    *,
    upto: datetime | None,
    map_style: str | None,
    overlays: Overlays | None = None,
    live: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> pdk.Deck:
    """The deck for one moment of the answer (`upto`: playback hour end, None = all),
    with the overlays and, in live mode, the incidents and hits that arrived since."""
    q = sit.query
    stale = sit.freshness[sit.freshness.stale & sit.freshness.dataset.isin(q.layers)]
    layers: list[pdk.Layer] = [gl.city_layer(pickable=False)]
    if q.scale != "province":
        layers.append(gl.district_layer())
    if not stale.empty:
        layers.append(gl.stale_layer(sorted(stale.city_code.unique())))
    if "risk_zones" in q.layers and len(sit.risk_zones):
        layers.append(gl.polygon_layer(_zones(sit), layer_id="risk-zones"))
    if "incidents" in q.layers:
        cells = _cells(sit, upto)
        if (mode == "points" or live is not None) and sit.points is not None:
            layers.append(gl.scatter_layer(_points(sit, names, upto), layer_id="incident-points",
                                           radius_px=3.5))  # fmt: skip
        elif mode == "heat" and len(cells):
            layers.append(gl.heat_layer(gl.cell_centres(cells)))
        elif len(cells):
            layers.append(gl.hex_layer(cells))
    if "help_requests" in q.layers and len(sit.help_requests):
        layers.append(gl.scatter_layer(_help(sit, upto), layer_id="help-requests",
                                       color=gl.HELP_COLOR, radius_px=3.5,
                                       line_color=[0, 90, 40, 255]))  # fmt: skip
    if "cameras" in q.layers and len(sit.cameras):
        cams = _cameras(sit)
        layers.append(gl.scatter_layer(cams, layer_id="cameras", radius_px=3))
        border = cams[cams.at_border.astype(bool)]
        if len(border):
            layers.append(gl.ring_layer(border, layer_id="border-checkpoints",
                                        color=gl.CAMERA_COLORS["checkpoint"]))  # fmt: skip
    if "units" in q.layers and len(sit.units):
        layers.append(gl.scatter_layer(_units(sit), layer_id="units", color=gl.UNIT_COLOR,
                                       radius_px=5))  # fmt: skip
    layers += overlay_layers(overlays, names)
    if live is not None and len(live[0]):
        layers.append(gl.scatter_layer(live_incidents(live[0], names), layer_id="incident-live",
                                       color=gl.LIVE_COLOR, radius_px=6,
                                       line_color=[0, 0, 0, 255]))  # fmt: skip
    if live is not None and len(live[1]):
        layers.append(gl.scatter_layer(hits_frame(live[1], names), layer_id="watch-hits-live",
                                       color=gl.HIT_COLOR, radius_px=9,
                                       line_color=[0, 0, 0, 255]))  # fmt: skip
    layers.append(gl.label_layer("city", names=names))
    view = gl.view_for(q.cities, q.districts, width_px=1100, height_px=MAP_HEIGHT)
    return hubmap.deck(layers, map_style=map_style, tooltip=TIP, view=view)


def legend(sit: Situation, mode: str, overlays: Overlays | None = None, live: bool = False) -> str:
    """One line of coloured markers naming what each colour on the map means."""
    q, parts = sit.query, []
    if "incidents" in q.layers:
        if (mode == "points" or live) and sit.points is not None:
            sev = [(":blue", "1"), (":orange", "2"), (":red", "3"), (":violet", "4")]
            parts += [f"{c}[●] {label('severity', s, lang())}" for c, s in sev]
        else:
            parts.append(f":orange[⬢] {t('sit_legend_cells')}")
    if "help_requests" in q.layers:
        parts.append(f":green[●] {t('sit_layer_help_requests')}")
    if "risk_zones" in q.layers:
        parts.append(f":red[▰] {t('sit_layer_risk_zones')}")
    if "cameras" in q.layers:
        parts.append(f":violet[◯] {t('sit_border_checkpoint')} · :gray[●] {t('sit_cam_offline')}")
    if "units" in q.layers:
        parts.append(f":blue[●] {t('sit_layer_units')}")
    if overlays is not None:
        if len(overlays.operations):
            parts.append(f":violet[◯] {t('cop_layer_operations')}")
        if len(overlays.alert_areas):
            parts.append(f":orange[◯] {t('cop_layer_alert_areas')}")
        if len(overlays.hits) or live:
            parts.append(f":red[●] {t('cop_layer_watch_hits')}")
        if len(overlays.tracked):
            parts.append(f"**●** {t('cop_layer_tracked')}")
    if live:
        parts.append(f":blue[●] {t('cop_live_new')}")
    parts.append(f":orange[▢] {t('sit_legend_stale')}")
    return " · ".join(parts)


def points_note(sit: Situation, mode: str) -> str | None:
    """Why points are not shown, when the viewer asked for them."""
    if mode == "points" and sit.points is None and "incidents" in sit.query.layers:
        return t("sit_too_many_points", limit=f"{POINT_LIMIT:,}")
    return None


# --- what was clicked ---------------------------------------------------------------------

# Layers whose features are records with a narrative: their detail is a new, audited read
# and needs a reason. The others' tooltip already shows every field they have.
DETAIL_DATASETS = {"incident-points": "incidents", "incident-live": "incidents",
                   "help-requests": "help_requests"}  # fmt: skip
# Overlays whose item has a page of its own: (page key, query parameter naming the item).
ITEM_PAGES = {"operations": ("response", "operation"), "alert-areas": ("alerts", "alert"),
              "watch-hits": ("watch", "hit"), "watch-hits-live": ("watch", "hit")}  # fmt: skip
_CELL_CACHE = "sit_cell_cache"


def selected(event) -> tuple[str, dict] | None:
    """(layer id, clicked object) from the deck's selection state, if any."""
    objects = (event or {}).get("selection", {}).get("objects", {}) if event else {}
    for layer_id, objs in objects.items():
        if objs:
            return layer_id, objs[0]
    return None


def feature_panel(hub, principal, pick: tuple[str, dict] | None, query: SituationQuery) -> None:
    """The clicked feature: its tooltip; a hexagon's incidents; a link to an overlay's
    item; for records with a narrative, the audited detail view behind a reason."""
    if pick is None:
        st.caption(t("sit_click_hint"))
        return
    layer_id, obj = pick
    tip = obj.get("tip") or obj.get("properties", {}).get("tip", "")
    st.markdown(f"**{t('sit_selected')}**")
    # The tooltip is HTML with feed text escaped; here the same words are shown as text.
    st.markdown(plain(html.unescape(tip.replace("<br/>", "\n"))))
    if layer_id == "incident-hexes" and "h3" in obj:
        _cell_panel(hub, principal, query, str(obj["h3"]))
        return
    if layer_id in ITEM_PAGES and "id" in obj:
        _item_link(principal, *ITEM_PAGES[layer_id], int(obj["id"]))
        return
    dataset = DETAIL_DATASETS.get(layer_id)
    if dataset is not None and "id" in obj:
        record_detail(hub, principal, dataset, obj)


def _item_link(principal, page: str, param: str, item_id: int) -> None:
    spec = PAGES_BY_KEY[page]
    if principal.role in spec.roles:
        st.page_link(spec.file, label=t("cop_open_item"), icon=":material/open_in_new:",
                     query_params={param: str(item_id)})  # fmt: skip


def _cell(hub, principal, query: SituationQuery, cell: str) -> CellIncidents | None:
    """A hexagon's incidents, asked once per (query, cell): a rerun is not a new read."""
    cached = st.session_state.get(_CELL_CACHE)
    if cached is not None and cached[0] == (query, cell):
        return cached[1]
    try:
        got = hub.cop.cell_incidents(principal, query, cell)
    except HubError as exc:
        st.error(error_text(exc), icon=":material/block:")
        return None
    st.session_state[_CELL_CACHE] = ((query, cell), got)
    return got


def _cell_panel(hub, principal, query: SituationQuery, cell: str) -> None:
    """Drill into a hexagon: its incidents the viewer may open (pick one for its detail
    and the joint response), and pointers to the others."""
    got = _cell(hub, principal, query, cell)
    if got is None:
        return
    for p in got.pointers:
        st.warning(t("pointer_line", n=p.count, city=p.city_code, level=t("level_" + p.level)),
                   icon=":material/lock:")  # fmt: skip
    if got.rows.empty:
        st.caption(t("cop_cell_none_open"))
        return
    st.caption(t("cop_cell_shown", n=len(got.rows), total=got.total))
    rows = got.rows.set_index("id")
    labels = {
        int(i): f"#{i} · {label('incident_type', r.type_code, lang())} · "
        f"{label('severity', str(r.severity), lang())} · {local_time(r.ts)}"
        for i, r in rows.iterrows()
    }  # fmt: skip
    chosen = st.selectbox(t("cop_cell_pick"), list(labels), format_func=labels.get,
                          key=f"sit-cell-{cell}")  # fmt: skip
    r = rows.loc[chosen]
    record_detail(hub, principal, "incidents",
                  {"id": int(chosen), "lon": float(r.lon), "lat": float(r.lat)})  # fmt: skip


def record_detail(hub, principal, dataset: str, obj: dict) -> None:
    """The audited detail of one record behind a reason; for incidents, the commander's
    EIDO share and the joint response."""
    if dataset == "incidents" and principal.role in INCIDENT_ROLES:
        # A commander responds to the incident itself: it is the reason, no case number.
        reason = Reason.for_incident(int(obj["id"]))
        st.caption(t("sit_incident_reason", id=int(obj["id"])))
    else:
        reason = reason_form(narrow=True)
    if st.button(t("sit_open_detail"), disabled=reason is None, key=f"sit-open-{obj['id']}"):
        try:
            view = hub.view_record(principal, dataset, int(obj["id"]), reason)
        except HubError as exc:
            st.error(error_text(exc), icon=":material/block:")
            return
        if view.record.rows:
            row = pd.DataFrame(view.record.rows).drop(columns=["lon", "lat"], errors="ignore")
            record_table(hub, principal, localise(row), transpose=True)
        for p in view.record.pointers:
            st.warning(t("pointer_line", n=p.count, city=p.city_code, level=t("level_" + p.level)))
        for linked, result in view.links.items():
            if result.rows:
                st.markdown(f"**{t('sit_linked_' + linked)}**")
                record_table(hub, principal, localise(pd.DataFrame(result.rows)))
    if dataset == "incidents" and principal.role == "commander":
        _eido_share(hub, principal, int(obj["id"]), reason)
    if dataset == "incidents" and principal.role in RESPONSE_ROLES:
        _start_operation(obj)


def _start_operation(obj: dict) -> None:
    """Open the joint-response page with its new-operation form filled from this incident
    (its number and position); the commander still names it and picks who to invite."""
    if st.button(t("sit_start_operation"), icon=":material/emergency:",
                 key=f"sit-op-{obj['id']}"):  # fmt: skip
        st.session_state[OPERATION_FROM_MAP] = {
            "incident_id": int(obj["id"]), "lon": float(obj["lon"]), "lat": float(obj["lat"]),
        }  # fmt: skip
        st.switch_page("pages/response.py")


def _eido_share(hub, principal, incident_id: int, reason) -> None:
    """Hand an incident to another city's platform as EIDO-like JSON (an audited export)."""
    if st.button(t("eido_share"), disabled=reason is None, key=f"sit-eido-{incident_id}"):
        try:
            eido = hub.share_incident(principal, incident_id, reason)
        except HubError as exc:
            st.error(error_text(exc), icon=":material/block:")
            return
        st.download_button(
            t("eido_download"), json.dumps(eido, ensure_ascii=False, indent=2).encode(),
            f"incident-{incident_id}.eido.json", "application/json", icon=":material/download:",
        )  # fmt: skip
