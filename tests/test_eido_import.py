"""EIDO import on both backends: no existence oracle, writes only in the importer's city
at a level the importer opens, identifiers in the narrative sealed, every import audited.

Issue 14 item 6 and issue 15 item 5 (the import half). One writable copy per backend.
"""

from __future__ import annotations

from datetime import timedelta

import h3
import pytest
from sqlalchemy import func, select

from hub.exchange import incident_to_eido
from hub.models import AuditEntry, Case, Incident
from hub.security.errors import HubError
from hub.security.narrative import holds_identifier
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

HEFEI, CHUZHOU = "340100", "341100"
POINT = (117.25, 31.85)  # 合肥
ID_NUMBER, PHONE = "340104199003071235", "13812345678"


class Env:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.hub = Hub(engine, load_settings())

    def who(self, username: str):
        return principal(self.engine, username)

    def scalar(self, stmt):
        with session_factory(self.engine)() as s:
            return s.scalar(stmt)

    def incident(self, city: str, source_id: str, level: str) -> int:
        """An incident put straight into the store (as a city's feed would)."""
        with transaction(self.engine) as s:
            row = Incident(
                source_id=source_id, city_code=city, classification=level, type_code="theft",
                severity=2, status="open", ts=at(), reported_at=at(), lon=POINT[0], lat=POINT[1],
                h3_r7=h3.latlng_to_cell(POINT[1], POINT[0], 7),
                h3_r8=h3.latlng_to_cell(POINT[1], POINT[0], 8), summary="机密警情",
            )  # fmt: skip
            s.add(row)
            s.flush()
            return row.id

    def imports(self, username: str) -> list[AuditEntry]:
        with session_factory(self.engine)() as s:
            return list(
                s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.username == username, AuditEntry.action.like("import%"))
                    .order_by(AuditEntry.seq)
                )
            )


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    e = Env(seeded_copy(request.param, tmp_path_factory))
    yield e
    e.engine.dispose()


def eido(city: str, source_id: str, level: str = "internal", summary: str | None = "路面盗窃"):
    return incident_to_eido({
        "source_id": source_id, "city_code": city, "district_code": None,
        "classification": level, "type_code": "theft", "severity": 2, "status": "open",
        "ts": at(), "reported_at": at(minutes=5), "lon": POINT[0], "lat": POINT[1],
        "address": "长江路1号", "summary": summary,
    })  # fmt: skip


def _refused(code: str, fn, *args, **kw) -> None:
    with pytest.raises(HubError) as caught:
        fn(*args, **kw)
    assert caught.value.code == code, caught.value


def test_a_guessed_key_of_a_secret_incident_answers_as_an_unknown_key_does(env) -> None:
    secret = env.incident(HEFEI, "SECRET-GUESS-1", "secret")
    cz = env.who("commander.cz")
    seen_before = len(env.imports("commander.cz"))
    guessed = env.hub.import_incident(cz, eido(HEFEI, "SECRET-GUESS-1"), now=at(30))
    unknown = env.hub.import_incident(cz, eido(HEFEI, "NO-SUCH-KEY-1"), now=at(30))
    # The same answer for both: a new record of the importer's, never the secret one's id.
    assert guessed[1] is unknown[1] is True
    assert secret not in (guessed[0], unknown[0])
    owners = {env.scalar(select(Incident.city_code).where(Incident.id == i)) for i in (guessed[0], unknown[0])}  # fmt: skip
    assert owners == {CHUZHOU}
    # Importing again finds the importer's copy, and that answer is audited too.
    assert env.hub.import_incident(cz, eido(HEFEI, "SECRET-GUESS-1"), now=at(31)) == (
        guessed[0], False,
    )  # fmt: skip
    entries = env.imports("commander.cz")[seen_before:]
    assert [(e.action, e.decision) for e in entries] == [
        ("import", "created"), ("import", "created"), ("import", "exists"),
    ]  # fmt: skip
    assert all(str(secret) not in (e.record_ids or "") for e in entries)


def test_own_city_keys_are_refused_alike_whether_or_not_they_exist(env) -> None:
    env.incident(CHUZHOU, "CZ-SECRET-1", "secret")
    cz = env.who("commander.cz")
    before = env.scalar(select(func.count()).select_from(Incident))
    for key in ("CZ-SECRET-1", "CZ-NOTHING-1"):
        _refused("eido_own_city", env.hub.import_incident, cz, eido(CHUZHOU, key), now=at(32))
    assert env.scalar(select(func.count()).select_from(Incident)) == before
    last = env.imports("commander.cz")[-2:]
    assert [(e.action, e.decision) for e in last] == [("import_refused", "eido_own_city")] * 2


def test_an_import_writes_only_in_the_importers_city_at_a_level_it_opens(env) -> None:
    cz = env.who("commander.cz")
    before = env.scalar(select(func.count()).select_from(Incident))
    _refused(
        "eido_above_level", env.hub.import_incident, cz, eido(HEFEI, "SECRET-SHARE-1", "secret"),
        now=at(33),
    )  # fmt: skip
    assert env.scalar(select(func.count()).select_from(Incident)) == before
    assert env.imports("commander.cz")[-1].action == "import_refused"
    assert env.scalar(select(Incident.id).where(Incident.source_id.contains("SECRET-SHARE-1"))) is None  # fmt: skip

    new_id, created = env.hub.import_incident(
        cz, eido(HEFEI, "SENSITIVE-SHARE-1", "sensitive"), now=at(33)
    )
    with session_factory(env.engine)() as s:
        row = s.get(Incident, new_id)
        assert created and (row.city_code, row.classification) == (CHUZHOU, "sensitive")
        assert row.district_code is None and row.source_id == f"eido:{HEFEI}:SENSITIVE-SHARE-1"
    # The importer opens what it imported: its copy can be shared on in turn.
    case_no = env.scalar(
        select(Case.case_no).where(Case.city_code == CHUZHOU, Case.status == "open").limit(1)
    )
    shared = env.hub.share_incident(cz, new_id, Reason("case_investigation", case_no), now=at(34))
    assert (
        shared["incidentComponent"][0]["incidentTrackingIdentifier"] == f"{CHUZHOU}:{row.source_id}"
    )


def test_the_narrative_of_an_import_is_sealed(env) -> None:
    cz = env.who("commander.cz")
    text = f"报警人身份证{ID_NUMBER}，电话{PHONE}"
    new_id, _ = env.hub.import_incident(cz, eido(HEFEI, "NARRATIVE-1", summary=text), now=at(35))
    summary = env.scalar(select(Incident.summary).where(Incident.id == new_id))
    assert ID_NUMBER not in summary and PHONE not in summary
    assert not holds_identifier(summary) and "⟦" in summary


def test_a_long_tracking_key_still_fits_and_stays_idempotent(env) -> None:
    cz = env.who("commander.cz")
    key = "K" * 64
    first = env.hub.import_incident(cz, eido(HEFEI, key), now=at(36))
    again = env.hub.import_incident(cz, eido(HEFEI, key), now=at(36) + timedelta(minutes=1))
    assert first[1] and again == (first[0], False)
    stored = env.scalar(select(Incident.source_id).where(Incident.id == first[0]))
    assert len(stored) <= 64 and stored.startswith(f"eido:{HEFEI}:~")


def test_a_feed_record_under_an_import_key_is_neither_returned_nor_overwritten(env) -> None:
    # Only the importer's own city's feed could key a record like an import; if it did,
    # at a level the importer may not open, the import is refused, never answered with it.
    hidden = env.incident(CHUZHOU, f"eido:{HEFEI}:TAKEN-1", "secret")
    cz = env.who("commander.cz")
    _refused("eido_key_taken", env.hub.import_incident, cz, eido(HEFEI, "TAKEN-1"), now=at(37))
    assert env.imports("commander.cz")[-1].decision == "eido_key_taken"
    assert str(hidden) not in (env.imports("commander.cz")[-1].detail or "")
