"""Red-team attacks on masking, pointers, break-glass, scopes and notes, as an outside
tester would run them: each test states one attack that worked on the code before its
fix, through the `Hub` services, on both backends (the small demo province).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from hub import demo
from hub.models import Grant, Person, Sighting
from hub.security import reasons, scopes
from hub.security.errors import HubError, InputError
from hub.security.masking import mask_fields
from hub.security.policy import Principal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from hub.validate import make_id_number
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

PLATE, CASE_NO = demo.PURSUIT_PLATE, demo.PURSUIT_CASE_NO
HEFEI, CHUZHOU = demo.PURSUIT_FROM, demo.PURSUIT_TO
PURSUIT = Reason("pursuit", CASE_NO)
JUSTIFICATION = "追逃：嫌疑车辆驶入滁州境内，需要立即查看过车记录"


@dataclass
class Env:
    engine: Engine
    hub: Hub
    ids: dict = field(default_factory=dict)
    _who: dict = field(default_factory=dict)

    def who(self, username: str) -> Principal:
        if username not in self._who:
            self._who[username] = principal(self.engine, username)
        return self._who[username]


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    yield Env(engine, hub)
    engine.dispose()


def _refused(code: str, fn, *args, **kw) -> HubError:
    with pytest.raises(HubError) as exc:
        fn(*args, **kw)
    assert exc.value.code == code, exc.value
    return exc.value


def _add_person(
    env: Env,
    source: str,
    *,
    name: str,
    idn: str,
    phone: str,
    address: str,
    city: str = HEFEI,
    district: str = "340102",
    level: str = "internal",
) -> int:
    cipher = env.hub.cipher
    with transaction(env.engine) as s:
        p = Person(
            source_id=source, city_code=city, district_code=district, classification=level,
            name=name, id_enc=cipher.encrypt("id_number", idn),
            id_bidx=cipher.blind_index("id_number", idn), phone_enc=cipher.encrypt("phone", phone),
            phone_bidx=cipher.blind_index("phone", phone), key_id=cipher.key_id,
            address=address, birth_date=None, sex=None,
        )  # fmt: skip
        s.add(p)
        s.flush()
        return p.id


# --- masks undone by the search itself -----------------------------------------------------


def test_analyst_cannot_spell_out_a_masked_name_by_prefix_search(env: Env) -> None:
    """Attack: the analyst sees names as 张*; searching 张a, 张b, ... letter by letter and
    watching which masked rows stay in the answer spells the name out. A viewer who sees
    names masked may only find a name typed in full."""
    pid = _add_person(env, "rt-name-1", name="司马相如", idn=make_id_number("340102", date(1981, 2, 3), 77),
                      phone="13511112222", address="蜀山区红旗路1号")  # fmt: skip
    analyst = env.who("analyst")
    rows = env.hub.search_person(analyst, "name", "司马相", PURSUIT, now=at(day=1)).rows
    assert pid not in {r["id"] for r in rows}
    rows = env.hub.search_person(analyst, "name", "司马相如", PURSUIT, now=at(day=1)).rows
    assert pid in {r["id"] for r in rows}
    assert all(r["name"] != "司马相如" for r in rows)
    # An investigator, who sees names in clear, still searches by prefix.
    rows = env.hub.search_person(
        env.who("investigator.hf"), "name", "司马相", PURSUIT, now=at(day=1)
    ).rows
    assert pid in {r["id"] for r in rows}


def _add_sighting(
    env: Env, source: str, plate: str, ts: datetime, *, city: str = HEFEI, level: str = "internal"
) -> int:
    """One sighting of `plate` at a camera of `city`, copied from one of its sightings."""
    with transaction(env.engine) as s:
        like = s.scalars(select(Sighting).where(Sighting.city_code == city).limit(1)).one()
        row = Sighting(
            source_id=source, city_code=city, district_code=like.district_code,
            classification=level, camera_id=like.camera_id, plate=plate, ts=ts, lon=like.lon,
            lat=like.lat,
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row.id


def _analyst_plate(env: Env) -> str:
    plate = "皖A7R2K9"
    _add_sighting(env, "rt-plate-1", plate, at(day=1, minutes=-60))
    return plate


def test_analyst_cannot_spell_out_a_masked_plate_by_prefix_search(env: Env) -> None:
    """Attack: plates are masked for the analyst (皖A****5), but a prefix search 皖A1,
    皖A12, ... tells which masked sightings carry which next character."""
    plate = _analyst_plate(env)
    analyst = env.who("analyst")
    for typed in (plate[:3], plate[:4], plate[:-1]):
        with pytest.raises(InputError) as exc:
            env.hub.search_plate(analyst, typed, PURSUIT, now=at(day=1))
        assert exc.value.code == "bad_plate"
    exact = env.hub.search_plate(analyst, plate, PURSUIT, now=at(day=1)).rows
    assert exact and all(r["plate"] != plate for r in exact)
    # without the province character: which province's plate it is stays as masked
    assert env.hub.search_plate(analyst, plate[1:], PURSUIT, now=at(day=1)).rows
    # viewers who see plates in clear keep the prefix search
    assert env.hub.search_plate(env.who("investigator.hf"), plate[:4], PURSUIT, now=at(day=1)).rows


# --- masks undone by another field of the same row -----------------------------------------


def test_the_masked_values_of_a_row_are_masked_wherever_the_row_repeats_them(env: Env) -> None:
    """Attack: the free-text finders know mobiles and 18-digit numbers only, so a row whose
    address repeats its own fixed-line phone, 15-digit ID number or (for the analyst) name
    shows in the address what the structured field masks."""
    legacy = "340102810203771"  # a 15-digit number: not found in free text
    fixed = "055162781234"
    pid = _add_person(env, "rt-row-1", name="上官婉儿", idn=legacy, phone=fixed,
                      address="联系人上官婉儿，电话0551-62781234，证件340102810203771")  # fmt: skip
    for username in ("officer.hf", "analyst"):
        rows = env.hub.search_person(env.who(username), "phone", fixed, PURSUIT, now=at(day=1)).rows
        [row] = [r for r in rows if r["id"] == pid]
        assert "*" in row["phone"] and "*" in row["id_number"]
        shown = json.dumps(row, ensure_ascii=False, default=str)
        for clear in ("62781234", "0551-62781234", legacy, legacy[6:12]):
            assert clear not in shown, (username, clear, row["address"])
        if username == "analyst":
            assert "上官婉儿" not in shown
    row = env.hub.search_person(
        env.who("investigator.hf"), "phone", fixed, PURSUIT, now=at(day=1)
    ).rows
    assert "0551-62781234" in row[0]["address"]


def test_mask_fields_masks_a_row_value_repeated_in_its_text() -> None:
    kinds = {"name": "name", "phone": "phone", "id_number": "id_number", "address": "text"}
    row = {"name": "张三丰", "phone": "010-88889999", "id_number": "110101650101123",
           "address": "张三丰 010 8888 9999 / 110101650101123"}  # fmt: skip
    shown = mask_fields(row, kinds, frozenset({"name", "phone", "id_number"}))
    assert "张三丰" not in shown["address"] and "88889999" not in shown["address"]
    assert "8888 9999" not in shown["address"] and "110101650101123" not in shown["address"]
    assert shown["address"].startswith("张**")
    # only the kinds masked: a clear name stays in the text
    shown = mask_fields(row, kinds, frozenset({"phone"}))
    assert shown["address"].startswith("张三丰") and "88889999" not in shown["address"]


# --- break-glass: the cap -----------------------------------------------------------------


def _glass(env: Env, hub: Hub, when: datetime, owner: str = CHUZHOU, **kw) -> int:
    args = {"plate": PLATE, "owner_city": owner, "reason": PURSUIT,
            "justification": JUSTIFICATION, **kw}  # fmt: skip
    return hub.break_glass(env.who("investigator.hf"), now=when, **args)


def _capped_hub(env: Env, cap: int) -> Hub:
    from dataclasses import replace

    return Hub(env.engine, replace(load_settings(), break_glass_daily_cap=cap))


def test_break_glass_cap_counts_grants_stamped_later_than_now(env: Env) -> None:
    """Attack: the cap counted grants with `granted_at <= now` only, so a break-glass
    stamped a moment earlier than the last one (two servers whose clocks differ, a
    replayed call) found no grant before it and passed a cap already used up."""
    hub, t0 = _capped_hub(env, 1), at(day=40)
    _glass(env, hub, t0 + timedelta(minutes=5))
    _refused("break_glass_cap", _glass, env, hub, t0)
    _refused("break_glass_cap", _glass, env, hub, t0 + timedelta(hours=23), owner="340200")
    # the window is a rolling day in absolute time, whatever the offset of `now`
    shanghai = (t0 + timedelta(hours=23, minutes=59)).astimezone(ZoneInfo("Asia/Shanghai"))
    _refused("break_glass_cap", _glass, env, hub, shanghai)
    _glass(env, hub, t0 + timedelta(hours=24, minutes=6))


def test_break_glass_cap_holds_under_concurrent_calls(env: Env) -> None:
    """Attack: many break-glasses of one user at once, to different cities, each reading
    the count before any of the others wrote its grant."""
    cap, t0 = 2, at(day=44)
    hub = _capped_hub(env, cap)
    owners = ["340200", "340300", "340400", "340500", "341100", "341200"]
    barrier = threading.Barrier(len(owners))
    results: list[object] = []

    def one(owner: str) -> None:
        barrier.wait()
        try:
            results.append(_glass(env, hub, t0, owner=owner))
        except Exception as exc:  # noqa: BLE001 - the outcome of each call is the point
            results.append(exc)

    threads = [threading.Thread(target=one, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    granted = [r for r in results if isinstance(r, int)]
    with session_factory(env.engine)() as s:
        stored = s.scalar(
            select(func.count()).select_from(Grant).where(
                Grant.kind == "break_glass", Grant.granted_at == t0,
                Grant.user_id == env.who("investigator.hf").user_id,
            )
        )  # fmt: skip
    assert len(granted) == stored <= cap, results
    assert granted, results


# --- break-glass: the justification -------------------------------------------------------

ZW = "\u200b"  # zero-width space: a format character, invisible on screen


@pytest.mark.parametrize(
    "thin",
    [
        # the plate restated with invisible characters inside, twice
        f"皖{ZW}AK7P35 皖{ZW}AK{ZW}7P35",
        # the plate restated in full-width letters, twice
        "皖ＡＫ７Ｐ３５，皖ＡＫ７Ｐ３５",
        # the case number in full-width, with the plate
        "Ａ３４０１００２０２６０００１ 皖ＡＫ７Ｐ３５ 皖ＡＫ７Ｐ３５",
        # four letters, each typed twice
        "紧紧急急情情况况",
        # one short phrase said over and over
        "追逃嫌车追逃嫌车追逃嫌车",
        # letters hidden between invisible ones count once
        f"追{ZW}逃{ZW}追{ZW}逃{ZW}追{ZW}逃{ZW}追{ZW}逃",
    ],
)
def test_break_glass_justification_cannot_be_padded(thin: str) -> None:
    """Attack: pass the "says something" rule with the plate or case number disguised
    (zero-width or full-width characters defeat the restatement filter), doubled
    letters, or a phrase repeated."""
    with pytest.raises(InputError) as exc:
        reasons.check_justification(thin, limit=1000, restates=(PLATE, CASE_NO))
    assert exc.value.code == "justification_too_thin"


@pytest.mark.parametrize(
    "text",
    [
        "追逃嫌疑人联系电话13812345678，需立即查看过车记录",
        f"追逃嫌疑人联系电话138{ZW}1234{ZW}5678，需立即查看过车记录",
        "追逃嫌疑人身份证３４０１０４１９９００３０７１２３５，需立即查看过车",
    ],
)
def test_break_glass_justification_may_not_carry_identifiers(text: str) -> None:
    """Attack: a justification is stored in the review's note and the audit detail in
    clear; DESIGN §4a says user-typed justifications may not hold an identifier."""
    with pytest.raises(InputError) as exc:
        reasons.check_justification(text, limit=1000, restates=(PLATE,))
    assert exc.value.code == "text_has_identifier"


def test_a_meaningful_justification_passes_and_is_stored_without_invisible_characters() -> None:
    text = f"追逃：嫌疑车辆{ZW}驶入滁州境内\u202e，需要立即查看"
    assert reasons.check_justification(text, limit=1000, restates=(PLATE,)) == (
        "追逃：嫌疑车辆驶入滁州境内，需要立即查看"
    )


@pytest.mark.parametrize(
    "note",
    [
        f"联系人138{ZW}1234{ZW}5678",
        "联系人1 3 8 1 2 3 4 5 6 7 8",
        f"证件340104{ZW}199003071235",
        "证件 340104 19900307 1235",
    ],
)
def test_reason_notes_hide_no_identifier_behind_invisible_or_spacing_characters(
    env: Env, note: str
) -> None:
    """Attack: the note of a reason is scanned for ID numbers and phones; a zero-width
    space or spaces between the digits hid them from the scan, and the note went into
    the audit log in clear."""
    _refused(
        "note_has_identifier", env.hub.search_plate, env.who("investigator.hf"), PLATE,
        Reason("pursuit", CASE_NO, note), now=at(day=2),
    )  # fmt: skip


def test_request_justification_and_decision_notes_carry_no_identifier(env: Env) -> None:
    """Attack: a request's justification (read by the approver) and an approver's
    decision note are user-typed text stored in clear; they took a phone number."""
    inv, t0 = env.who("investigator.hf"), at(day=3)
    kw = {"owner_city": CHUZHOU, "level": "sensitive", "scope_kind": "plate",
          "scope_value": PLATE, "reason": PURSUIT}  # fmt: skip
    _refused("text_has_identifier", env.hub.request_access, inv, now=t0,
             justification="嫌疑人电话13812345678，请批准", **kw)  # fmt: skip
    rid = env.hub.request_access(inv, now=t0, justification="追逃嫌疑车辆，请批准", **kw)
    _refused("text_has_identifier", env.hub.decide_request, env.who("approver.cz"), rid,
             approve=True, note=f"已核实，联系138{ZW}1234{ZW}5678", now=t0)  # fmt: skip


# --- scopes ---------------------------------------------------------------------------------

FROM_TO = '"from":"2026-11-22T08:00:00+08:00","to":"2026-11-23T08:00:00+08:00"'


@pytest.mark.parametrize(
    "value",
    [
        # duplicated keys: one JSON reader takes the first, another the last
        '{"camera_ids":[1],' + FROM_TO + ',"camera_ids":[2,3]}',
        '{"camera_ids":[1],"from":"2026-11-22T08:00:00+08:00","from":"2026-11-20T08:00:00+08:00",'
        '"to":"2026-11-23T08:00:00+08:00"}',
    ],
)
def test_a_camera_area_with_a_key_twice_is_refused(value: str) -> None:
    """Attack: the approver reads the area as the requester's tool wrote it, the hub as
    its own parser does: with a key given twice the two disagree on what is granted."""
    with pytest.raises(InputError) as exc:
        scopes.parse_scope("camera_area", value)
    assert exc.value.code == "bad_camera_area"
