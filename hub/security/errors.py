"""Refusals the user can act on. Each carries a code (the UI catalogue key `err_<code>`)
and parameters, so the hub stays free of UI strings and the message is translated once."""

from __future__ import annotations


class HubError(Exception):
    """A refused action; nothing of it was written (except its audit entry)."""

    # Set once the refusal has its audit entry, so that the boundary (`hub.boundary`)
    # audits every refusal exactly once whichever layer raised it.
    audited = False

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class SignInError(HubError):
    # `identity.sign_in` audits every attempt, refused ones included, before raising.
    audited = True


class ReasonError(HubError):
    pass


class AccessDenied(HubError):
    pass


class RequestError(HubError):
    pass


class InputError(HubError):
    pass


def refuse_nul(value: str, field: str) -> str:
    """Refuse text with a NUL character: no input needs one and PostgreSQL cannot store
    or compare it (a query with one fails instead of answering)."""
    if "\x00" in value:
        raise InputError("bad_characters", "the text contains a NUL character", field=field)
    return value
