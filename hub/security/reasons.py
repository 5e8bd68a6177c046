"""The structured reason every record lookup needs: a purpose from the code table and an
open case; an optional note that must not carry an ID number or a phone number."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from hub.codes import code_values
from hub.models import Case
from hub.security.errors import InputError, ReasonError, refuse_nul
from hub.security.policy import Principal
from hub.validate import find_id_numbers, find_phones

MAX_NOTE = 500
MAX_CASE_NO = 32


@dataclass(frozen=True)
class Reason:
    purpose: str
    case_no: str
    note: str = ""

    def normalised(self) -> Reason:
        return Reason(self.purpose.strip(), self.case_no.strip().upper(), self.note.strip())


def check_reason(session: Session, principal: Principal, reason: Reason) -> Row:
    """Validate a reason; returns the open case it names (id, status, city_code).

    Raises
    ------
    ReasonError
        Unknown purpose (`unknown_purpose`), unknown case (`no_open_case`), closed case
        (`no_open_case`), a case of another city (`case_other_city`), a note with
        personal identifiers (`note_has_identifier`).
    InputError
        Over-long case number or note (`too_long`).
    """
    reason = reason.normalised()
    if reason.purpose not in code_values("purpose"):
        raise ReasonError(
            "unknown_purpose", f"unknown purpose {reason.purpose!r}", purpose=reason.purpose
        )
    if len(reason.case_no) > MAX_CASE_NO:
        raise InputError("too_long", "case number too long", field="case_no", limit=MAX_CASE_NO)
    if len(reason.note) > MAX_NOTE:
        raise InputError("too_long", "note too long", field="note", limit=MAX_NOTE)
    refuse_nul(reason.case_no, "case_no")
    if find_id_numbers(reason.note) or find_phones(reason.note):
        raise ReasonError("note_has_identifier", "the note contains an ID number or a phone number")
    # Validating the reason is not a read of records for the user: the policy filter
    # does not apply, and nothing of the case is returned beyond its existence.
    case = session.execute(
        select(Case.id, Case.status, Case.city_code)
        .where(Case.case_no == reason.case_no)
        .execution_options(policy="validation")
    ).first()
    if case is None or case.status != "open":
        raise ReasonError("no_open_case", "no open case with that number", case_no=reason.case_no)
    if principal.role != "province_approver" and case.city_code != principal.city_code:
        raise ReasonError(
            "case_other_city", "the case belongs to another city", case_no=reason.case_no
        )
    return case
