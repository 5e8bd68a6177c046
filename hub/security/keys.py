"""SM4 key rotation: re-encrypt every encrypted field from the current key to a new one.

Each ciphertext row carries the `key_id` it was written under. Rotation reads every row
still under the current key id, decrypts it (a row that does not decrypt stops the whole
rotation: nothing is written), encrypts under the new key and records the new key id, in
the caller's transaction, with one audit entry. The blind indexes are keyed separately
and do not change, so searches keep working across the rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.models import HelpRequest, Person
from hub.security import audit
from hub.security.crypto import DecryptionError, FieldCipher
from hub.security.errors import InputError

# (model, {column: field name bound into the ciphertext as associated data})
ENCRYPTED = (
    (Person, {"id_enc": "id_number", "phone_enc": "phone"}),
    (HelpRequest, {"caller_phone_enc": "phone"}),
)
BATCH = 5000


@dataclass(frozen=True)
class Rotation:
    rows: dict[str, int]  # table -> rows re-encrypted
    old_key_id: str
    new_key_id: str


def rotate(session: Session, old: FieldCipher, new: FieldCipher, *, now: datetime) -> Rotation:
    """Re-encrypt every field written under `old.key_id` with `new`.

    Raises
    ------
    InputError
        `same_key` when the new key id or key equals the old one; `key_mismatch` when a
        ciphertext under the old key id does not decrypt with the old key (nothing is
        written: the caller's transaction is rolled back by the error).
    """
    if new.key_id == old.key_id or new.key == old.key:
        raise InputError("same_key", "the new key and key id must differ from the current ones")
    done: dict[str, int] = {}
    for model, columns in ENCRYPTED:
        cols = [getattr(model, c) for c in columns]
        count = 0
        last = 0
        while True:
            rows = session.execute(
                select(model.id, *cols)
                .where(model.key_id == old.key_id, model.id > last)
                .order_by(model.id).limit(BATCH)
                .execution_options(policy="validation")
            ).all()  # fmt: skip
            if not rows:
                break
            for row in rows:
                values = {"key_id": new.key_id}
                for column, field in columns.items():
                    blob = getattr(row, column)
                    if blob is None:
                        continue
                    try:
                        values[column] = new.encrypt(field, old.decrypt(field, blob))
                    except DecryptionError:
                        raise InputError(
                            "key_mismatch", "a ciphertext does not decrypt under the current key",
                            table=model.__tablename__, id=row.id,
                        ) from None  # fmt: skip
                session.execute(
                    update(model).where(model.id == row.id).values(**values)
                    .execution_options(policy="validation")
                )  # fmt: skip
            count += len(rows)
            last = rows[-1].id
        done[model.__tablename__] = count
    audit.record(
        session, None, "key_rotate", now=now, username="cli:keys", dataset="keys",
        query={"kind": "key", "value": f"{old.key_id}->{new.key_id}"},
        result_count=sum(done.values()), decision="ok", detail=done,
    )  # fmt: skip
    return Rotation(done, old.key_id, new.key_id)
