"""Refusals the user can act on. Each carries a code (the UI catalogue key `err_<code>`)
and parameters, so the hub stays free of UI strings and the message is translated once."""

from __future__ import annotations


class HubError(Exception):
    """A refused action; nothing of it was written (except its audit entry)."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class SignInError(HubError):
    pass


class ReasonError(HubError):
    pass


class AccessDenied(HubError):
    pass


class RequestError(HubError):
    pass


class InputError(HubError):
    pass
