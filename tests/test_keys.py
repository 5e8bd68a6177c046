"""SM4 key rotation (`python -m hub keys rotate`): every encrypted field moves to the new
key, searches by ID number keep working, and a failed rotation changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.cli import main as cli
from hub.models import AuditEntry, HelpRequest, Person
from hub.security.crypto import DecryptionError, FieldCipher
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import seeded_copy

NEW_KEY, NEW_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "k2027a"


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
    assert "re-encrypted under k2027a" in capsys.readouterr().out
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
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert entry.action == "key_rotate" and entry.result_count > 0


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
    assert f"'id': {victim}" in capsys.readouterr().err
    with session_factory(engine)() as s:
        after = s.scalar(select(func.count()).select_from(Person).where(Person.key_id == current))
    assert after == before, "nothing was re-encrypted"


def test_rotation_needs_a_different_new_key(engine, monkeypatch) -> None:
    monkeypatch.delenv("HUB_SM4_NEW_KEY", raising=False)
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1
    monkeypatch.setenv("HUB_SM4_NEW_KEY", load_settings().sm4_key_hex)
    monkeypatch.setenv("HUB_SM4_NEW_KEY_ID", "other")
    assert cli(["keys", "rotate", "--db", _db(engine)]) == 1
