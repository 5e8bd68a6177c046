"""Identifiers in free text (issue 14, item 2): sealed at ingest, revealed by policy.

Unit tests of hub.security.narrative on the peer vectors, then the feed pipeline on
SQLite and PostgreSQL: narratives are stored with tokens, never clear identifiers, and
re-ingesting the same file changes nothing although every seal draws a new nonce.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hub import models as m
from hub.ingest.pipeline import ingest
from hub.ingest.spec import load_spec
from hub.security.crypto import FieldCipher
from hub.security.masking import mask_text
from hub.security.narrative import (
    TOKEN,
    UNREADABLE,
    conceal,
    holds_identifier,
    open_value,
    reveal,
    seal,
    seal_value,
)
from hub.settings import load_settings
from hub.store import transaction
from hub.validate import find_id_numbers, find_phones
from tests.conftest import PEER, ROOT

CIPHER = FieldCipher.from_settings(load_settings())
OTHER = FieldCipher(b"\x01" * 16, CIPHER.key_id, CIPHER.index_key)
IDS = json.loads((PEER / "id_numbers.json").read_text())["valid"]
PHONES = ["13812345678", "+86 139-1234-5678", "１３８１２３４５６７８", "0086 15900001111"]
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def clear(text: str) -> bool:
    return bool(find_id_numbers(text) or find_phones(text))


def narrative(i: int) -> str:
    return f"（合成）报警人{PHONES[i % len(PHONES)]}称，嫌疑人身份证{IDS[i % len(IDS)]}，已处置。"


@pytest.mark.parametrize("i", range(len(IDS)))
def test_seal_leaves_no_identifier_and_reveals_by_policy(i):
    text = narrative(i)
    sealed = seal(text, CIPHER)
    assert not clear(sealed) and not holds_identifier(sealed) and holds_identifier(text)
    assert len(TOKEN.findall(sealed)) == 2
    assert seal(sealed, CIPHER) == sealed  # idempotent
    assert reveal(sealed, CIPHER, mask_ids=False, mask_phones=False) == text
    assert reveal(sealed, CIPHER, mask_ids=True, mask_phones=True) == mask_text(text)
    only_ids = reveal(sealed, CIPHER, mask_ids=True, mask_phones=False)
    assert IDS[i % len(IDS)] not in only_ids and find_phones(only_ids)


def test_text_without_identifiers_is_untouched():
    for text in (
        None,
        "",
        "（合成）报警人称发生警情，已派员处置。",
        "案号A3401002026110001 共12人",
    ):
        assert seal(text, CIPHER) == text


def test_a_token_that_does_not_decrypt_shows_a_placeholder():
    sealed = seal(narrative(0), CIPHER)
    assert reveal(sealed, OTHER, mask_ids=False, mask_phones=False).count(UNREADABLE) == 2
    damaged = sealed.replace(TOKEN.search(sealed).group(3), "AAAA", 1)
    shown = reveal(damaged, CIPHER, mask_ids=False, mask_phones=False)
    assert UNREADABLE in shown and IDS[0] in shown  # the other token still opens


def test_old_clear_text_is_masked_by_the_same_policy():
    text = narrative(1)
    assert reveal(text, CIPHER, mask_ids=True, mask_phones=True) == mask_text(text)
    assert reveal(text, CIPHER, mask_ids=False, mask_phones=False) == text
    assert not clear(conceal(text)) and not clear(conceal(seal(text, CIPHER)))
    assert "⟦" not in conceal(seal(text, CIPHER))


def test_tokens_survive_json_and_csv_round_trips():
    sealed = seal(narrative(2), CIPHER)
    assert json.loads(json.dumps({"s": sealed}))["s"] == sealed
    assert json.loads(json.dumps({"s": sealed}, ensure_ascii=False))["s"] == sealed
    buf = io.StringIO()
    csv.writer(buf).writerow([sealed, "x"])
    assert next(csv.reader(io.StringIO(buf.getvalue())))[0] == sealed


def test_a_bounded_column_gets_masked_identifiers_when_tokens_do_not_fit():
    text = f"（合成）长江西路1号 店主{PHONES[0]}"
    stored = seal(text, CIPHER, max_len=40)
    assert len(stored) <= 40 and not clear(stored) and "138****5678" in stored


def test_whole_values_open_only_with_the_key():
    sealed = seal_value('{"姓名": "张三"}', CIPHER)
    assert "张三" not in sealed and open_value(sealed, CIPHER) == '{"姓名": "张三"}'
    assert open_value(sealed, OTHER) is None


# --- the feed pipeline ------------------------------------------------------------------


def _feed(store, lines: list[str]):
    return ingest(store, city_code="340100", spec=load_spec("hefei_incidents_gbk"),
                  source=io.BytesIO(("\n".join(lines) + "\n").encode("gbk")),
                  source_name="feed.csv", cipher=CIPHER, now=NOW)  # fmt: skip


def test_feed_narratives_are_stored_sealed_and_reingest_changes_nothing(store):
    lines = (ROOT / "data/samples/hefei_incidents_gbk.csv").read_bytes().decode("gbk").splitlines()
    for k in (1, 2, 3):
        lines[k] = (
            lines[k]
            .replace("（合成）报警人称", f"（合成）报警人{PHONES[k]}身份证{IDS[k]}称")
            .replace("长江西路", f"长江西路（店主{PHONES[0]}）")
        )
    first = _feed(store, lines)
    assert first.rows_rejected == 0 and first.rows_inserted == len(lines) - 1
    with transaction(store) as s:
        rows = s.execute(select(m.Incident.source_id, m.Incident.summary, m.Incident.address)).all()
    assert rows and not any(clear(f"{r.summary} {r.address}") for r in rows)
    sealed = {r.source_id: r for r in rows if "⟦" in (r.summary or "")}
    assert len(sealed) == 3
    for r in sealed.values():
        shown = reveal(r.summary, CIPHER, mask_ids=False, mask_phones=False)
        assert any(p in shown for p in PHONES) and any(i in shown for i in IDS)
        assert "138****5678" in reveal(r.address, CIPHER, mask_ids=True, mask_phones=True)
    again = _feed(store, [*lines[:1], *lines[1:][::-1]])  # same rows, other file
    assert again.rows_unchanged == len(lines) - 1 and again.rows_updated == 0


def test_stored_narratives_are_sealed_and_move_to_the_current_key(store):
    """Text from before sealing (clear) and text sealed under a retired key: after
    `seal_stored` all of it is sealed under the current key; a second run is a no-op."""
    from sqlalchemy import update

    from hub.security.narrative_store import seal_stored

    lines = (ROOT / "data/samples/hefei_incidents_gbk.csv").read_bytes().decode("gbk").splitlines()
    _feed(store, lines[:4])
    old = FieldCipher(b"\x02" * 16, "old-1", CIPHER.index_key)
    ring = FieldCipher(CIPHER.key, CIPHER.key_id, CIPHER.index_key, (("old-1", old.key),))
    texts = [narrative(3), seal(narrative(4), old), f"长江西路{PHONES[0]}号"]
    with transaction(store) as s:
        ids = s.scalars(select(m.Incident.id).order_by(m.Incident.id)).all()
        for i, text in zip(ids[:2], texts[:2], strict=True):
            s.execute(update(m.Incident).where(m.Incident.id == i).values(summary=text))
        s.execute(update(m.Incident).where(m.Incident.id == ids[2]).values(address=texts[2]))
    with transaction(store) as s:
        assert seal_stored(s, ring, now=NOW)["incidents"] == 3
    with transaction(store) as s:
        rows = s.execute(select(m.Incident.summary, m.Incident.address)
                         .where(m.Incident.id.in_(ids[:3])).order_by(m.Incident.id)).all()  # fmt: skip
        assert seal_stored(s, ring, now=NOW)["incidents"] == 0
    stored = [rows[0].summary, rows[1].summary, rows[2].address]
    assert not any(clear(t) or ":old-1:" in t for t in stored)
    shown = [reveal(t, ring, mask_ids=False, mask_phones=False) for t in stored]
    assert shown == [narrative(3), narrative(4), texts[2]]
