"""SM4 key rotation (`python -m hub keys rotate`): every encrypted field moves to the new
key, searches by ID number keep working, and a failed rotation changes nothing; rows left
under a retired key read through the key ring and are reported until re-encrypted. The
command line speaks Chinese by default (English with --lang en)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub import demo
from hub.cli import main as cli
from hub.models import AuditEntry, HelpRequest, Incident, Person
from hub.security.crypto import DecryptionError, FieldCipher
from hub.security.narrative import reveal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

NEW_KEY, NEW_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "k2027a"
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)


@pytest.fixture(autouse=True)
def _chinese_by_default(monkeypatch):
    monkeypatch.delenv("HUB_LANG", raising=False)


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path_factory):
    e = seeded_copy(request.param, tmp_path_factory)
    yield e
    e.dispose()


def _db(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_rotation_moves_every_field_to_the_new_key(engine, monkeypatch, capsys) -> None:
    old = FieldCipher.from_settings(load_settings())
    new = FieldCipher(bytes.fromhex(NEW_KEY), NEW_ID, old.index_key)
    with session_factory(engine)() as s:
        person = s.scalars(select(Person).where(Person.id_enc.is_not(None)).limit(1)).one()
        id_number, bidx = old.decrypt("id_number", person.id_enc), person.id_bidx
    monkeypatch.setenv("HUB_SM4_NEW_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", NEW_ID)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 0
    out = capsys.readouterr().out
    assert "已在密钥 k2027a 下重新加密：人员 " in out and "下一步：将 HUB_SM4_KEY" in out, out
    with session_factory(engine)() as s:
        for model in (Person, HelpRequest):
            left = s.scalar(select(func.count()).select_from(model)
                            .where(model.key_id != NEW_ID).execution_options(policy="validation"))  # fmt: skip
            assert left == 0, f"{model.__tablename__} rows still under the old key"
        person = s.get(Person, person.id)
        assert new.decrypt("id_number", person.id_enc) == id_number
        assert person.id_bidx == bidx, "the blind index does not change"
        with pytest.raises(DecryptionError):
            old.decrypt("id_number", person.id_enc)
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(2)).all()
        rotated = [e for e in entries if e.action == "key_rotate"]
        assert rotated and rotated[0].result_count > 0


def _summaries(engine) -> list[str]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Incident.summary).where(Incident.summary.contains("⟦"))
                              .execution_options(policy="validation")))  # fmt: skip


def test_rotation_moves_sealed_narratives_to_the_new_key(engine, monkeypatch) -> None:
    """Identifiers sealed in narratives follow the fields: after a rotation they open with
    the new key alone, and the old key can be retired."""
    sealed = _summaries(engine)
    assert sealed and all(":demo-1:" in t for t in sealed)
    monkeypatch.setenv("HUB_SM4_NEW_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", NEW_ID)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 0
    after = _summaries(engine)
    assert len(after) == len(sealed) and all(f":{NEW_ID}:" in t for t in after)
    new_only = FieldCipher(bytes.fromhex(NEW_KEY), NEW_ID, b"x")
    opened = [reveal(t, new_only, mask_ids=False, mask_phones=False) for t in after]
    assert all("⟦" not in t and "[***]" not in t for t in opened)


def test_seal_narratives_encrypts_what_an_older_store_kept_in_clear(engine, capsys) -> None:
    phone = "13912345678"
    with transaction(engine) as s:
        incident = s.scalars(select(Incident).order_by(Incident.id).limit(1)
                             .execution_options(policy="validation")).one()  # fmt: skip
        incident.summary = f"报警人电话 {phone}，称有人打架"
        incident_id = incident.id
    assert cli(["keys", "seal-narratives", "--db", _db(engine)]) == 0
    assert "警情 1" in capsys.readouterr().out
    with session_factory(engine)() as s:
        stored = s.get(Incident, incident_id).summary
    assert phone not in stored and "⟦ph:" in stored
    cipher = FieldCipher.from_settings(load_settings())
    assert (
        reveal(stored, cipher, mask_ids=False, mask_phones=False)
        == f"报警人电话 {phone}，称有人打架"
    )
    assert cli(["keys", "seal-narratives", "--db", _db(engine), "--lang", "en"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_ciphertext_under_another_key_stops_the_rotation(engine, monkeypatch, capsys) -> None:
    stranger = FieldCipher(bytes.fromhex("ab" * 16), "stranger", b"x")
    with transaction(engine) as s:  # one row claims the current key id but is not under it
        person = s.scalars(select(Person).where(Person.id_enc.is_not(None)).limit(1)).one()
        person.id_enc = stranger.encrypt("id_number", "340102199001011234")
        victim = person.id
    with session_factory(engine)() as s:
        current = load_settings().sm4_key_id
        before = s.scalar(select(func.count()).select_from(Person).where(Person.key_id == current))
    assert before > 0
    monkeypatch.setenv("HUB_SM4_NEW_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", NEW_ID)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1
    err = capsys.readouterr().err
    assert f"人员第 {victim} 条记录的密文无法用其标注的密钥解密" in err and "未做任何更改" in err, (
        err
    )
    with session_factory(engine)() as s:
        after = s.scalar(select(func.count()).select_from(Person).where(Person.key_id == current))
    assert after == before, "nothing was re-encrypted"


def test_rotation_needs_a_different_new_key(engine, monkeypatch) -> None:
    monkeypatch.delenv("HUB_SM4_NEW_KEY", raising=False)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1
    monkeypatch.setenv("HUB_SM4_NEW_KEY", load_settings().sm4_key_hex)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", "other")
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1


@pytest.mark.parametrize("new_id", ["k2027-rotation-of-november", "k 2027", "k:2027"])
def test_a_new_key_id_the_store_cannot_hold_is_refused_not_cut(engine, monkeypatch, capsys, new_id):
    """An id cut to fit would differ from the one the operator then configures, leaving
    every row unreadable: it is refused, and nothing moves."""
    monkeypatch.setenv("HUB_SM4_NEW_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", new_id)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1
    assert "HUB_SM4_NEW_KEY_ID 无效" in capsys.readouterr().err
    with session_factory(engine)() as s:
        assert not s.scalar(select(func.count()).select_from(Person)
                            .where(Person.key_id != "demo-1").execution_options(policy="validation"))  # fmt: skip


def _late_write_under_old_key(engine, person_id: int, old: FieldCipher, new: FieldCipher) -> None:
    """What a process still on the old key does after the rotation: it writes a row under
    the old key id."""
    with transaction(engine) as s:
        person = s.get(Person, person_id)
        person.id_enc = old.encrypt("id_number", new.decrypt("id_number", person.id_enc))
        person.phone_enc = old.encrypt("phone", new.decrypt("phone", person.phone_enc))
        person.key_id = old.key_id


def test_rows_left_under_the_old_key_stay_readable_and_are_reported(
    engine, monkeypatch, capsys
) -> None:
    settings = load_settings()
    old = FieldCipher.from_settings(settings)
    new = FieldCipher(bytes.fromhex(NEW_KEY), NEW_ID, old.index_key)
    inv = principal(engine, "investigator.hf")
    with session_factory(engine)() as s:
        person_id, blob = s.execute(
            select(Person.id, Person.id_enc)
            .where(Person.city_code == inv.city_code, Person.classification != "secret",
                   Person.id_enc.is_not(None), Person.phone_enc.is_not(None))
            .order_by(Person.id).limit(1)
        ).one()  # fmt: skip
    id_number = old.decrypt("id_number", blob)

    def search(settings):
        return Hub(engine, settings).search_person(inv, "id_number", id_number, PURSUIT, now=at())

    before = search(settings)
    assert [r["id"] for r in before.rows] == [person_id]
    monkeypatch.setenv("HUB_SM4_NEW_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", NEW_ID)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 0
    assert "没有行仍在其他密钥下" in capsys.readouterr().out
    _late_write_under_old_key(engine, person_id, old, new)

    # the app restarted on the new key, the old one in its ring: every row reads
    monkeypatch.setenv("HUB_SM4_KEY", NEW_KEY)
    monkeypatch.setenv("HUB_SM4_KEY_ID", NEW_ID)
    monkeypatch.setenv("HUB_SM4_OLD_KEYS", f"{old.key_id}:{settings.sm4_key_hex}")
    assert search(load_settings()).rows == before.rows

    # `keys status` names the rows per table and field, and the key they are under
    assert cli(["keys", "status", "--db", _db(engine)]) == 0
    out = capsys.readouterr().out
    assert f"人员·身份证号：1 行在密钥 {old.key_id} 下（在密钥环中）" in out, out
    assert f"人员·电话：1 行在密钥 {old.key_id} 下（在密钥环中）" in out
    assert "求助" not in out
    assert cli(["keys", "status", "--db", _db(engine), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert f"Persons / ID number: 1 rows under {old.key_id} (in the key ring)" in out, out

    # without the old key in the ring the row is named as unreadable, not silently wrong
    monkeypatch.delenv("HUB_SM4_OLD_KEYS")
    with pytest.raises(DecryptionError, match=f"no key '{old.key_id}' in the key ring"):
        search(load_settings())
    assert cli(["keys", "status", "--db", _db(engine)]) == 1
    assert "不在密钥环中：无法读取" in capsys.readouterr().out

    # `keys reencrypt` moves the stragglers to the current key
    monkeypatch.setenv("HUB_SM4_OLD_KEYS", f"{old.key_id}:{settings.sm4_key_hex}")
    assert cli(["keys", "reencrypt", "--db", _db(engine), "--lang", "en"]) == 0
    assert "re-encrypted under k2027a: Persons 1, Help requests 0; no rows under other keys" in (
        capsys.readouterr().out
    )
    with session_factory(engine)() as s:
        assert s.get(Person, person_id).key_id == NEW_ID
    monkeypatch.delenv("HUB_SM4_OLD_KEYS")
    assert search(load_settings()).rows == before.rows


def test_a_malformed_key_ring_is_refused(monkeypatch) -> None:
    for raw in (
        "demo-0",
        "demo-0:abcd",
        "a-key-id-of-17-ch:" + "ab" * 16,
        f"x:{'ab' * 16},x:{'cd' * 16}",
    ):
        monkeypatch.setenv("HUB_SM4_OLD_KEYS", raw)
        with pytest.raises(ValueError, match="HUB_SM4_OLD_KEYS"):
            FieldCipher.from_settings(load_settings())
    # the current key id may appear in the ring only with the current key
    monkeypatch.setenv("HUB_SM4_OLD_KEYS", f"{load_settings().sm4_key_id}:{'ab' * 16}")
    with pytest.raises(ValueError, match="other than HUB_SM4_KEY"):
        FieldCipher.from_settings(load_settings())
