"""Case and narrative searches go through the same policy, masks and audit as the rest."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from hub.demo import PURSUIT_CASE_NO
from hub.models import AuditEntry, Incident
from hub.security.errors import InputError
from hub.security.narrative import reveal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import transaction
from tests.security_support import seeded_copy

REASON = Reason("case_investigation", PURSUIT_CASE_NO)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Hub:
    return Hub(seeded_copy("sqlite", tmp_path_factory), load_settings())


def test_case_by_number_and_title(hub):
    inv = hub.sign_in("investigator.hf", "demo-2026")
    by_no = hub.search_case(inv, PURSUIT_CASE_NO.lower(), REASON)
    assert [r["case_no"] for r in by_no.rows] == [PURSUIT_CASE_NO]
    by_title = hub.search_case(inv, "追逃演示", REASON)
    assert PURSUIT_CASE_NO in {r["case_no"] for r in by_title.rows}


def test_narrative_search_masks_phones_for_officers_not_investigators(hub):
    with transaction(hub.engine) as s:
        summary = s.scalar(
            select(Incident.summary).where(
                Incident.summary.like("%联系电话%"), Incident.city_code == "340100",
                Incident.district_code == "340102", Incident.classification == "public",
            ).limit(1)
        )  # fmt: skip
    assert "⟦ph:" in summary  # stored sealed; the investigator reads it in clear
    summary = reveal(summary, hub.cipher, mask_ids=False, mask_phones=False)
    words = summary.split("联系电话")[0][-8:]
    officer = hub.sign_in("officer.hf", "demo-2026")
    inv = hub.sign_in("investigator.hf", "demo-2026")
    seen_by_officer = {r["summary"] for r in hub.search_text(officer, words, REASON).rows}
    seen_by_inv = {r["summary"] for r in hub.search_text(inv, words, REASON).rows}
    assert summary in seen_by_inv
    assert summary not in seen_by_officer
    assert any("****" in text for text in seen_by_officer)
    with transaction(hub.engine) as s:
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert last.dataset == "incidents" and json.loads(last.query)["kind"] == "text"


@pytest.mark.parametrize(
    ("text", "code"), [("a", "query_too_short"), ("电话13812345678", "text_has_identifier")]
)
def test_text_search_refusals(hub, text, code):
    inv = hub.sign_in("investigator.hf", "demo-2026")
    with pytest.raises(InputError) as err:
        hub.search_text(inv, text, REASON)
    assert err.value.code == code
    with transaction(hub.engine) as s:
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert last.action == "search_refused" and "13812345678" not in (last.query or "")


def test_owner_city_sees_accesses_flags_one_and_closes_reviews(hub):
    approver = hub.sign_in("approver.hf", "demo-2026")
    accesses = hub.owner_view(approver, days=3650)
    assert len(accesses) and set(accesses["city_code"]) - {"340100"} == set(accesses["city_code"])
    reviews = hub.reviews(approver)
    assert "break_glass" in set(reviews["kind"]), (
        "the demo's break-glass from 滁州 owes 合肥 a review"
    )
    seq = int(accesses["seq"].iloc[0])
    rid = hub.flag_access(approver, seq, "查询目的与案件不符，请核实")
    assert rid in set(hub.reviews(approver)["id"])
    with pytest.raises(InputError) as err:
        hub.flag_access(approver, seq, "  ")
    assert err.value.code == "note_required"
    own = hub.sign_in("investigator.hf", "demo-2026")
    mine = hub.search_plate(own, "皖AK7P35", REASON)
    assert mine.rows
    with transaction(hub.engine) as s:
        own_seq = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()
    with pytest.raises(InputError) as err:
        hub.flag_access(approver, own_seq, "本市用户")
    assert err.value.code == "unknown_access"
    hub.close_review(approver, rid, "已核实，正常办案")
    assert rid not in set(hub.reviews(approver)["id"])
    assert rid in set(hub.reviews(approver, status="closed")["id"])
    with transaction(hub.engine) as s:
        actions = s.scalars(
            select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(5)
        ).all()
    assert "review_close" in actions and "flag_access_refused" in actions


def test_record_detail_with_links_through_the_policy(hub):
    inv = hub.sign_in("investigator.hf", "demo-2026")
    [case] = hub.search_case(inv, PURSUIT_CASE_NO, REASON).rows
    view = hub.view_record(inv, "cases", case["id"], REASON)
    assert view.record.rows[0]["case_no"] == PURSUIT_CASE_NO
    assert [v["plate"] for v in view.links["vehicles"].rows] == ["皖AK7P35"]
    suspects = view.links["persons"]
    assert len(suspects.rows) + sum(p.count for p in suspects.pointers) >= 1
    vehicle = hub.view_record(inv, "vehicles", view.links["vehicles"].rows[0]["id"], REASON)
    sightings = vehicle.links["sightings"]
    assert {r["city_code"] for r in sightings.rows} == {"340100"}
    assert {(p.city_code, p.level) for p in sightings.pointers} == {("341100", "sensitive")}
    with transaction(hub.engine) as s:
        actions = s.scalars(
            select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(3)
        ).all()
    assert actions == ["view", "view", "view"]


@pytest.mark.parametrize(
    ("typed", "expect"), [("AK7P35", "皖AK7P35"), ("皖AK7", "皖AK7P35"), ("皖 ak7p35", "皖AK7P35")]
)
def test_plate_without_province_or_by_prefix(hub, typed, expect):
    inv = hub.sign_in("investigator.hf", "demo-2026")
    res = hub.search_plate(inv, typed, REASON)
    assert expect in {r["plate"] for r in res.rows}


def test_identifier_pointer_becomes_a_request_without_the_number_in_clear(hub):
    from hub.models import AccessRequest, Person

    officer = hub.sign_in("officer.hf", "demo-2026")
    with transaction(hub.engine) as s:
        enc = s.scalar(
            select(Person.id_enc)
            .where(Person.city_code == "341100", Person.classification == "sensitive")
            .limit(1)
        )
    number = hub.cipher.decrypt("id_number", enc)
    first = hub.search_person(officer, "id_number", number, REASON)
    assert first.rows == [] and [(p.city_code, p.level) for p in first.pointers] == [
        ("341100", "sensitive")
    ]
    rid = hub.request_access(
        officer, owner_city="341100", level="sensitive", scope_kind="id_number", scope_value=number,
        reason=REASON, justification="嫌疑人身份核实",
    )  # fmt: skip
    with transaction(hub.engine) as s:
        stored = s.scalar(select(AccessRequest.scope_value).where(AccessRequest.id == rid))
    assert stored == hub.cipher.blind_index("id_number", number) and number not in stored
    hub.decide_request(hub.sign_in("approver.cz", "demo-2026"), rid, approve=True, note="同意")
    second = hub.search_person(officer, "id_number", number, REASON)
    assert [r["id_number"] for r in second.rows] == [number], (
        "opened by the grant, unmasked for the officer"
    )
    assert second.grants_used
