"""SM4 key rotation: re-encrypt every encrypted field under one key, and say what is left.

Each ciphertext row carries the `key_id` it was written under, and reads decrypt by that
id from the key ring (`FieldCipher.old_keys`), so a row under a retired key stays
readable. Rotation reads every row under a key of the ring other than the target,
decrypts it (a row that does not decrypt stops the whole rotation: nothing is written),
encrypts under the target key and records its key id, in the caller's transaction, with
one audit entry. Rows under a key id the ring does not hold cannot be moved: they are
counted in `Rotation.left`, per table and field, and `remaining` counts them at any time.
The blind indexes are keyed separately and do not change, so searches keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
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
    # "table.column" -> {key id: rows} still under a key other than the new one
    left: dict[str, dict[str, int]]


def remaining(session: Session, key_id: str) -> dict[str, dict[str, int]]:
    """Rows whose ciphertext is under a key other than `key_id`.

    Returns
    -------
    dict
        "table.column" -> {stored key id ("" for none): rows}, only where there are any.
    """
    left: dict[str, dict[str, int]] = {}
    for model, columns in ENCRYPTED:
        for column in columns:
            col = getattr(model, column)
            counts = session.execute(
                select(model.key_id, func.count())
                .where(col.is_not(None), model.key_id.is_distinct_from(key_id))
                .group_by(model.key_id)
                .execution_options(policy="validation")
            ).all()  # fmt: skip
            if counts:
                left[f"{model.__tablename__}.{column}"] = {k or "": n for k, n in counts}
    return left


def rotate(session: Session, old: FieldCipher, new: FieldCipher, *, now: datetime) -> Rotation:
    """Re-encrypt every field written under a key of `old`'s ring with `new`.

    Raises
    ------
    InputError
        `same_key` when the new key id or key equals the current one; `key_mismatch` when
        a ciphertext does not decrypt with the ring's key of its stored id (nothing is
        written: the caller's transaction is rolled back by the error).
    """
    if new.key_id == old.key_id or new.key == old.key:
        raise InputError("same_key", "the new key and key id must differ from the current ones")
    return _reencrypt(session, old, new, now=now)


def reencrypt(session: Session, cipher: FieldCipher, *, now: datetime) -> Rotation:
    """Move every row still under a retired key of the ring to the current key (rows
    written under the old key by a process that outlived a rotation)."""
    return _reencrypt(session, cipher, cipher, now=now)


def _reencrypt(session: Session, ring: FieldCipher, new: FieldCipher, *, now: datetime) -> Rotation:
    sources = [k for k in ring.ring if k != new.key_id]
    done: dict[str, int] = {}
    for model, columns in ENCRYPTED:
        cols = [getattr(model, c) for c in columns]
        # A row without a key id was written before ids were stored and decrypts under
        # the current key (`FieldCipher.decrypt`): when that key is retired, it moves too,
        # or the new current key would be tried on it and it would read as nothing.
        under = model.key_id.in_(sources)
        if ring.key_id in sources:
            under = or_(under, model.key_id.is_(None))
        count = 0
        last = 0
        while sources:
            rows = session.execute(
                select(model.id, model.key_id, *cols)
                .where(under, model.id > last)
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
                        values[column] = new.encrypt(field, ring.decrypt(field, blob, row.key_id))
                    except DecryptionError:
                        raise InputError(
                            "key_mismatch", "a ciphertext does not decrypt under its stored key id",
                            table=model.__tablename__, id=row.id,
                        ) from None  # fmt: skip
                session.execute(
                    update(model).where(model.id == row.id).values(**values)
                    .execution_options(policy="validation")
                )  # fmt: skip
            count += len(rows)
            last = rows[-1].id
        done[model.__tablename__] = count
    left = remaining(session, new.key_id)
    audit.record(
        session, None, "key_rotate", now=now, username="cli:keys", dataset="keys",
        query={"kind": "key", "value": f"{','.join(sorted(sources))}->{new.key_id}"},
        result_count=sum(done.values()), decision="ok",
        detail={**done, **({"left": left} if left else {})},
    )  # fmt: skip
    return Rotation(done, ring.key_id, new.key_id, left)
