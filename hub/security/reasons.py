"""The structured reason every record lookup needs: a purpose from the code table and an
open case — or, for a commander's response to an incident, an operational purpose and the
incident itself; an optional note that must not carry an ID number or a phone number."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from hub.codes import code_values
from hub.models import Case, Incident
from hub.security.errors import InputError, ReasonError, refuse_nul
from hub.security.policy import Principal
from hub.validate import find_id_numbers, find_phones

MAX_NOTE = 500
MAX_CASE_NO = 32
# A justification that says something: this many letters (a Chinese character is one)
# beyond what the form already carries, of at least MIN_DISTINCT different ones.
MIN_JUSTIFICATION_LETTERS = 8
MIN_DISTINCT_LETTERS = 4
# An incident in progress has no case yet: a commander responds under an operational
# purpose that names the incident (Reason.for_incident) instead of a case number.
INCIDENT_PURPOSES = frozenset({"emergency"})
INCIDENT_ROLES = frozenset({"commander"})


# Separators people put between digit groups; a scan that also reads the digits with
# them taken out finds "1 3 8 1 2 3 4 5 6 7 8" and "340104 19900307 1235".
_DIGIT_GAP = re.compile(r"(?<=\d)[\s\-_.·/]+(?=\d)")


def visible(text: str) -> str:
    """`text` without format characters (zero-width spaces and joiners, bidirectional
    overrides): they show nothing, so they can only hide or disguise what is shown."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def has_identifier(text: str) -> bool:
    """Whether user-typed text holds an ID number or a phone, however it is disguised:
    invisible characters, full-width digits, or digit groups split by separators."""
    shown = unicodedata.normalize("NFKC", visible(text))
    squeezed = _DIGIT_GAP.sub("", shown)
    return any(find_id_numbers(t) or find_phones(t) for t in (shown, squeezed))


def refuse_identifiers(text: str, field: str) -> str:
    """`text` unchanged; InputError ``text_has_identifier`` if it holds an identifier
    (DESIGN §4a: user-typed justifications and notes may not)."""
    if has_identifier(text):
        raise InputError(
            "text_has_identifier", "the text contains an ID number or a phone number", field=field
        )
    return text


@dataclass(frozen=True)
class Reason:
    """Why records are read: a purpose and an open case, or (``incident_id`` set, no case)
    a commander's operational response to one incident."""

    purpose: str
    case_no: str
    note: str = ""
    incident_id: int | None = None

    @classmethod
    def for_incident(cls, incident_id: int, note: str = "", purpose: str = "emergency") -> Reason:
        """A commander's reason to respond to incident `incident_id` (no case number)."""
        return cls(purpose, "", note, incident_id=incident_id)

    @property
    def reference(self) -> str:
        """What the reason cites, as the audit log records it: the case number, or
        ``INC-<id>`` for an incident."""
        return self.case_no if self.incident_id is None else f"INC-{self.incident_id}"

    def normalised(self) -> Reason:
        return Reason(self.purpose.strip(), self.case_no.strip().upper(), self.note.strip(),
                      self.incident_id)  # fmt: skip


def check_reason(
    session: Session, principal: Principal, reason: Reason, *, incident_ok: bool = False
) -> Row:
    """Validate a reason; returns the open case it names (id, status, city_code), or for
    an incident reason the incident (id, status, city_code).

    `incident_ok`: the caller reads records for a response (a lookup); requests, grants
    and watches need a case and refuse an incident reason.

    Raises
    ------
    ReasonError
        Unknown purpose (`unknown_purpose`), unknown case (`no_open_case`), closed case
        (`no_open_case`), a case of another city (`case_other_city`), a note with
        personal identifiers (`note_has_identifier`); for an incident reason
        `incident_reason_not_here`, `incident_reason_role`, `incident_reason_purpose`
        (param ``purpose``), `incident_reason_with_case`, `no_incident` (param ``id``: none
        the commander may open).
    InputError
        Over-long case number or note (`too_long`).
    """
    reason = reason.normalised()
    if reason.incident_id is not None:
        return _check_incident_reason(session, principal, reason, incident_ok)
    if reason.purpose not in code_values("purpose"):
        raise ReasonError(
            "unknown_purpose", f"unknown purpose {reason.purpose!r}", purpose=reason.purpose
        )
    if len(reason.case_no) > MAX_CASE_NO:
        raise InputError("too_long", "case number too long", field="case_no", limit=MAX_CASE_NO)
    if len(reason.note) > MAX_NOTE:
        raise InputError("too_long", "note too long", field="note", limit=MAX_NOTE)
    refuse_nul(reason.case_no, "case_no")
    if has_identifier(reason.note):
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


def _check_incident_reason(
    session: Session, principal: Principal, reason: Reason, allowed_here: bool
) -> Row:
    if not allowed_here:
        raise ReasonError("incident_reason_not_here", "this needs a case number, not an incident")
    if principal.role not in INCIDENT_ROLES:
        raise ReasonError("incident_reason_role", "only a commander responds to an incident")
    if reason.purpose not in INCIDENT_PURPOSES:
        raise ReasonError(
            "incident_reason_purpose", "not an operational purpose", purpose=reason.purpose
        )
    if reason.case_no:
        raise ReasonError("incident_reason_with_case", "cite a case or an incident, not both")
    if len(reason.note) > MAX_NOTE:
        raise InputError("too_long", "note too long", field="note", limit=MAX_NOTE)
    if has_identifier(reason.note):
        raise ReasonError("note_has_identifier", "the note contains an ID number or a phone number")
    # A read under the commander's own row filter (the session's backstop, grants
    # included): an incident they may not open is as unknown as one that does not exist.
    incident = session.execute(
        select(Incident.id, Incident.status, Incident.city_code).where(
            Incident.id == reason.incident_id
        )
    ).first()
    if incident is None:
        raise ReasonError("no_incident", "no incident you may open", id=reason.incident_id)
    return incident


def check_justification(text: str, *, limit: int, restates: Iterable[str] = ()) -> str:
    """A justification as stored: trimmed, bounded, and saying something.

    "." or "追逃" or the plate typed again says nothing an approver or a reviewer can
    check. The text must hold `MIN_JUSTIFICATION_LETTERS` letters (Chinese characters
    count one each; digits and punctuation do not), `MIN_DISTINCT_LETTERS` of them
    different, once the values the form already carries (`restates`: the plate, the
    case number) are taken out. It is judged as it reads: invisible characters are
    dropped (and not stored), full-width forms compared as their ASCII ones, a letter
    typed twice in a row counts once, and a phrase repeated counts once.

    Raises
    ------
    InputError
        ``justification_required`` (empty), ``too_long``, ``bad_characters``,
        ``text_has_identifier``, ``justification_too_thin`` (param ``min``).
    """
    text = visible(text).strip()
    if not text:
        raise InputError("justification_required", "say why the access is needed")
    if len(text) > limit:
        raise InputError("too_long", "justification too long", field="justification", limit=limit)
    refuse_nul(text, "justification")
    refuse_identifiers(text, "justification")
    rest = unicodedata.normalize("NFKC", text).casefold()
    for value in restates:
        if value := unicodedata.normalize("NFKC", visible(value)).casefold().strip():
            rest = rest.replace(value, " ")
    letters = "".join(c for c in rest if c.isalpha())
    # 紧紧急急 reads as 紧急; 追逃追逃追逃 as 追逃.
    letters = re.sub(r"(.)\1+", r"\1", letters)
    letters = re.sub(r"^(.+?)\1+$", r"\1", letters)
    if len(letters) < MIN_JUSTIFICATION_LETTERS or len(set(letters)) < MIN_DISTINCT_LETTERS:
        raise InputError(
            "justification_too_thin", "the justification says too little",
            min=MIN_JUSTIFICATION_LETTERS,
        )  # fmt: skip
    return text
