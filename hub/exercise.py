"""Exercise mode: a scripted scenario (data/exercises/NAME.toml) played on the store.

A run starts (`start`) and its injects become due as time passes (`at_s` seconds ÷
speed after the start). `advance` applies every due inject; the CLI calls it in a loop
and the app on each refresh of its live pages, so no background thread is needed and a
test can play a whole scenario by passing a later `now`.

Injects act through the ordinary services as the city the script names (a role-player
acting for that city's commander, audited under the user who started the run with the
user name ``exercise:<name>``): every lifecycle rule and check applies as in a real
operation. What they create is marked: operations and assists by `exercise_run_id`,
incidents and alerts in `exercise_records`; the pages show an EXERCISE banner.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.assign import assign_city_district
from geo.nearest import UnitIndex, unit_speeds_kmh
from hub import alerts, response
from hub import models as m
from hub.boundary import holds_identifier
from hub.security import audit
from hub.security.errors import AccessDenied, HubError, InputError
from hub.security.identity import principal_of
from hub.security.policy import Principal
from hub.settings import DATA_DIR

EXERCISE_DIR = DATA_DIR / "exercises"
KINDS = ("incident", "operation", "accept", "alert", "unit_status", "request", "timeline")
MIN_SPEED, MAX_SPEED = 0.1, 100.0
START_ROLES = frozenset({"commander"})


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    title_en: str
    lead_city: str
    injects: tuple[dict, ...]

    @property
    def duration_s(self) -> float:
        return max((float(i["at_s"]) for i in self.injects), default=0.0)


def _bad(name: str, problem: str) -> InputError:
    return InputError("bad_exercise", f"exercise {name}: {problem}", name=name, problem=problem)


def scenario_names(directory: Path = EXERCISE_DIR) -> list[str]:
    """Names of the shipped scenarios (file stems)."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_scenario(name: str, directory: Path = EXERCISE_DIR) -> Scenario:
    """Read and check one scenario.

    Raises
    ------
    InputError
        ``unknown_exercise`` (no such file) or ``bad_exercise`` (params ``name``,
        ``problem``) for a script that would fail half-way.
    """
    if name not in scenario_names(directory):
        raise InputError("unknown_exercise", f"no exercise {name!r}", name=name[:64])
    with (directory / f"{name}.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    injects = tuple(raw.get("inject", []))
    if not injects:
        raise _bad(name, "no injects")
    refs: dict[str, str] = {}
    last = 0.0
    for n, inj in enumerate(injects):
        kind = inj.get("kind")
        if kind not in KINDS:
            raise _bad(name, f"inject {n}: kind must be one of {', '.join(KINDS)}")
        at = inj.get("at_s")
        if not isinstance(at, int | float) or at < last:
            raise _bad(name, f"inject {n}: at_s must be a number, in order")
        last = float(at)
        for key in ("operation", "incident"):
            if key in inj and refs.get(inj[key]) != key:
                raise _bad(name, f"inject {n}: {key} {inj[key]!r} is not an earlier {key}")
        if "ref" in inj:
            refs[inj["ref"]] = kind
        # Injected text lands in shared records unsealed: a drill script has no business
        # carrying a real ID number or phone.
        for key, value in inj.items():
            if isinstance(value, str) and holds_identifier(value):
                raise _bad(name, f"inject {n}: {key} holds an ID number or a phone")
    for key in ("title", "lead_city"):
        if not isinstance(raw.get(key), str):
            raise _bad(name, f"{key} missing")
    return Scenario(name, raw["title"], raw.get("title_en", raw["title"]), raw["lead_city"],
                    injects)  # fmt: skip


def start(session: Session, principal: Principal, name: str, *, speed: float, now: datetime) -> int:
    """Start a run of a scenario; returns the run's id (nothing is injected yet).

    Raises
    ------
    AccessDenied
        ``role_not_allowed`` unless a commander.
    InputError
        ``unknown_exercise``, ``bad_exercise``, ``bad_speed``, ``exercise_running``
        (one run of a scenario at a time).
    """
    if principal.role not in START_ROLES:
        raise AccessDenied("role_not_allowed", "commanders start exercises")
    scenario = load_scenario(name)
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise InputError("bad_speed", "speed out of range", low=MIN_SPEED, high=MAX_SPEED)
    running = session.scalar(
        select(func.count()).select_from(m.ExerciseRun).where(
            m.ExerciseRun.name == name, m.ExerciseRun.status == "running"
        )
    )  # fmt: skip
    if running:
        raise InputError("exercise_running", "this exercise is already running", name=name)
    run = m.ExerciseRun(name=name, speed=float(speed), started_by=principal.user_id,
                        started_at=now, status="running", injects_done=0)  # fmt: skip
    session.add(run)
    session.flush()
    audit.record(session, principal, "exercise_start", now=now, dataset="exercises",
                 query={"kind": "exercise", "value": name}, decision="ok",
                 detail={"run": run.id, "speed": float(speed), "title": scenario.title})  # fmt: skip
    return run.id


def _actor(starter: Principal, run: m.ExerciseRun, city: str) -> Principal:
    return replace(starter, username=f"exercise:{run.name}"[:64], display_name="演练导调",
                   role="commander", city_code=city, district_code=None)  # fmt: skip


def _created(session: Session, run: m.ExerciseRun, dataset: str) -> list[int]:
    if dataset == "operations":
        return list(session.scalars(
            select(m.Operation.id).where(m.Operation.exercise_run_id == run.id)
            .order_by(m.Operation.id)
        ))  # fmt: skip
    x = m.ExerciseRecord
    return list(session.scalars(
        select(x.record_id).where(x.run_id == run.id, x.dataset == dataset).order_by(x.record_id)
    ))  # fmt: skip


def _resolve(session: Session, run: m.ExerciseRun, scenario: Scenario, ref: str) -> int:
    """The id of what the inject named `ref` created (n-th of its kind in this run)."""
    kinds = {"incident": "incidents", "operation": "operations"}
    target = next(i for i in scenario.injects if i.get("ref") == ref)
    same = [i for i in scenario.injects if i["kind"] == target["kind"]]
    ids = _created(session, run, kinds[target["kind"]])
    position = same.index(target)
    if position >= len(ids):
        raise _bad(scenario.name, f"{ref!r} has not been created")
    return ids[position]


def _nearest_unit(
    session: Session, city: str, kinds: list[str], lon: float, lat: float, status: str
) -> m.Unit:
    rows = session.scalars(
        select(m.Unit).where(m.Unit.city_code == city, m.Unit.status == status,
                             m.Unit.kind.in_(kinds or [k for k, v in unit_speeds_kmh().items()
                                                       if v > 0]))
    ).all()  # fmt: skip
    if not rows:
        raise InputError("unknown_unit", f"no {status} unit of {kinds} in {city}", id="")
    index = UnitIndex([u.id for u in rows], [u.lon for u in rows], [u.lat for u in rows],
                      [u.kind for u in rows])  # fmt: skip
    best = int(index.nearest(lon, lat, k=1)["id"].iloc[0])
    return next(u for u in rows if u.id == best)


def _apply(
    session: Session, run: m.ExerciseRun, scenario: Scenario, inj: dict, starter: Principal,
    now: datetime,
) -> str:  # fmt: skip
    kind = inj["kind"]
    city = inj.get("city", scenario.lead_city)
    actor = _actor(starter, run, city)
    if kind == "incident":
        lon, lat = response.check_point(inj["lon"], inj["lat"])
        _, district = assign_city_district([lon], [lat])
        inc = m.Incident(
            source_id=f"EX{run.id}-{run.injects_done}", city_code=city,
            district_code=district[0], classification="internal", type_code=inj["type_code"],
            severity=int(inj["severity"]), status="open", ts=now, reported_at=now, lon=lon,
            lat=lat, h3_r7=h3.latlng_to_cell(lat, lon, 7), h3_r8=h3.latlng_to_cell(lat, lon, 8),
            address=inj.get("address"), summary=inj.get("summary"),
        )  # fmt: skip
        session.add(inc)
        session.flush()
        session.add(m.ExerciseRecord(dataset="incidents", record_id=inc.id, run_id=run.id))
        return f"incident {inc.id}"
    if kind == "alert":
        alert_id, cities = alerts.raise_alert(
            session, actor, title=inj["title"], level=inj["level"], body=inj.get("body"),
            lon=inj.get("lon"), lat=inj.get("lat"), radius_m=inj.get("radius_m"), now=now,
            source_id=f"EX{run.id}-{run.injects_done}",
        )  # fmt: skip
        session.add(m.ExerciseRecord(dataset="alerts", record_id=alert_id, run_id=run.id))
        return f"alert {alert_id} → {', '.join(cities)}"
    if kind == "operation":
        op_id = response.create_operation(
            session, actor, name=inj["name"], kind="incident", now=now,
            incident_id=_resolve(session, run, scenario, inj["incident"]),
            radius_m=float(inj.get("radius_m", 3000)), invite=inj.get("invite", []),
            objectives=inj.get("objectives"), exercise_run_id=run.id,
        )  # fmt: skip
        return f"operation {op_id}"
    op_id = _resolve(session, run, scenario, inj["operation"])
    if kind == "accept":
        response.respond_invitation(session, actor, op_id, accept=True, now=now)
        return f"{city} accepted operation {op_id}"
    op = session.get(m.Operation, op_id)
    if kind == "unit_status":
        unit = _nearest_unit(session, city, inj.get("unit_kinds", []), op.lon, op.lat, "available")
        response.set_unit_status(session, actor, unit.id, inj["status"], now=now)
        return f"unit {unit.callsign} {inj['status']}"
    if kind == "request":
        owner = inj["owner_city"]
        unit = _nearest_unit(session, owner, inj.get("unit_kinds", []), op.lon, op.lat, "available")
        rr = response.request_unit(session, _actor(starter, run, inj["from_city"]), op_id,
                                   unit.id, now=now, note=inj.get("note"))  # fmt: skip
        return f"request {rr}: {inj['from_city']} asks {owner} for {unit.callsign}"
    response.add_entry(session, actor, op_id, inj["text"], significant=bool(inj.get("significant")),
                       now=now)  # fmt: skip
    return "timeline entry"


def advance(session: Session, run_id: int, *, now: datetime) -> list[str]:
    """Apply every inject of the run that is due at `now`; returns what each did.

    An inject the store refuses (say, no available unit of that kind) is skipped with
    its reason in the audit log; the run goes on, as a real drill would.
    """
    run = session.get(m.ExerciseRun, int(run_id))
    if run is None or run.status != "running":
        return []
    scenario = load_scenario(run.name)
    user = session.get(m.User, run.started_by) if run.started_by is not None else None
    if user is None:
        raise InputError("unknown_user", "the exercise has no starting user")
    starter = principal_of(user)
    elapsed = (now - run.started_at).total_seconds() * run.speed
    done = []
    while run.injects_done < len(scenario.injects):
        inj = scenario.injects[run.injects_done]
        if float(inj["at_s"]) > elapsed:
            break
        try:
            with session.begin_nested():
                outcome = _apply(session, run, scenario, inj, starter, now)
        except HubError as exc:
            outcome = f"skipped ({exc.code}: {exc})"
        audit.record(session, _actor(starter, run, inj.get("city", scenario.lead_city)),
                     "exercise_inject", now=now, dataset="exercises",
                     query={"kind": "exercise", "value": run.name},
                     decision="ok" if not outcome.startswith("skipped") else "skipped",
                     detail={"run": run.id, "inject": run.injects_done, "kind": inj["kind"],
                             "outcome": outcome})  # fmt: skip
        done.append(f"[{inj['at_s']:>4} s] {inj['kind']}: {outcome}")
        run.injects_done += 1
    if run.injects_done >= len(scenario.injects):
        run.status, run.finished_at = "finished", now
    session.flush()
    return done


def advance_all(session: Session, *, now: datetime) -> list[str]:
    """Advance every running exercise (the app's live pages call this on refresh)."""
    ids = session.scalars(select(m.ExerciseRun.id).where(m.ExerciseRun.status == "running"))
    return [line for run_id in list(ids) for line in advance(session, run_id, now=now)]


def running(session: Session) -> list[dict]:
    """Runs in progress: id, name, title, started_at, speed, injects_done, injects."""
    rows = []
    for run in session.scalars(select(m.ExerciseRun).where(m.ExerciseRun.status == "running")):
        try:
            scenario = load_scenario(run.name)
        except InputError:
            continue
        rows.append({"id": run.id, "name": run.name, "title": scenario.title,
                     "title_en": scenario.title_en, "started_at": run.started_at,
                     "speed": run.speed, "injects_done": run.injects_done,
                     "injects": len(scenario.injects)})  # fmt: skip
    return rows


def next_due(session: Session, run_id: int) -> datetime | None:
    """When the run's next inject falls due (None when it has finished)."""
    run = session.get(m.ExerciseRun, int(run_id))
    if run is None or run.status != "running":
        return None
    scenario = load_scenario(run.name)
    if run.injects_done >= len(scenario.injects):
        return run.started_at
    at = float(scenario.injects[run.injects_done]["at_s"])
    return run.started_at.astimezone(UTC) + timedelta(seconds=at / run.speed)
