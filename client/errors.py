"""Every error the client raises: one class per protocol error code, plus the client's own.

The server answers errors as `{"error": CODE, "detail": TEXT, ...}` over HTTP and as
`{"type": "error", "code": CODE, "detail": TEXT, ...}` on the socket; `error_from()` turns
either into the matching exception, in this one place.
"""

from __future__ import annotations


class ChatterboxError(Exception):
    """Base class of everything this client raises on purpose."""

    code = "error"

    def __init__(self, detail: str = "", *, status: int | None = None, **extra):
        self.detail = detail or (self.__doc__ or self.code).strip()
        self.status = status
        self.extra = extra
        super().__init__(self.detail)

    def __getattr__(self, name: str):
        # Extra fields of the error (field, missing, not_members, usernames, retry_after, quota).
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(name)


class ServerError(ChatterboxError):
    """The server refused a request; `code`, `detail` and `extra` say why."""


class InvalidError(ServerError):
    """The request or frame is malformed (`invalid`); `field` names the input at fault."""

    code = "invalid"


class NotFoundError(ServerError):
    """No such thing, or not visible to you (`not_found`)."""

    code = "not_found"


class ForbiddenError(ServerError):
    """You may not do that (`forbidden`)."""

    code = "forbidden"


class NotMemberError(ServerError):
    """You are not a member of that conversation (`not_member`)."""

    code = "not_member"


class RateLimitedError(ServerError):
    """Too many messages; wait `retry_after` seconds (`rate_limited`)."""

    code = "rate_limited"


class TooLargeError(ServerError):
    """The message, frame or file is too large (`too_large`); `quota` is set past the user's quota."""

    code = "too_large"


class UnauthorizedError(ServerError):
    """No valid credentials: the token is unknown or revoked, or the session ended (`unauthorized`)."""

    code = "unauthorized"


class MethodNotAllowedError(ServerError):
    """The server does not take this method on this path (`method_not_allowed`)."""

    code = "method_not_allowed"


class ConflictError(ServerError):
    """That already exists (`conflict`)."""

    code = "conflict"


ERRORS_BY_CODE: dict[str, type[ServerError]] = {
    cls.code: cls
    for cls in (
        InvalidError,
        NotFoundError,
        ForbiddenError,
        NotMemberError,
        RateLimitedError,
        TooLargeError,
        UnauthorizedError,
        MethodNotAllowedError,
        ConflictError,
    )
}


def error_from(payload: dict, *, status: int | None = None) -> ServerError:
    """Return the exception for an HTTP error body or a socket `error` frame."""
    code = payload.get("error") or payload.get("code") or "invalid"
    detail = str(payload.get("detail") or "")
    extra = {key: value for key, value in payload.items() if key not in {"error", "code", "detail", "type"}}
    cls = ERRORS_BY_CODE.get(code, ServerError)
    error = cls(detail or f"The server answered {code}.", status=status, **extra)
    if cls is ServerError:
        error.code = code
    return error


# The client's own errors


class ConnectionFailed(ChatterboxError):
    """The server cannot be reached, or answered something that is not Chatterbox."""

    code = "connection_failed"


class LoginFailed(ChatterboxError):
    """The username, email, password or two-factor code was not accepted."""

    code = "login_failed"


class TwoFactorRequired(LoginFailed):
    """The account has two-factor authentication: give a TOTP or recovery code."""

    code = "two_factor_required"


class SignedOut(ChatterboxError):
    """The server closed the socket with 4401: log in again; the client does not reconnect."""

    code = "signed_out"


class Banned(ChatterboxError):
    """The server closed the socket with 4403: this account is banned or inactive."""

    code = "banned"


class NotConnected(ChatterboxError):
    """The socket is closed for good (signed out, banned or stopped)."""

    code = "not_connected"


class EncryptionError(ChatterboxError):
    """End-to-end encryption cannot go ahead."""

    code = "encryption"


class EncryptionLocked(EncryptionError):
    """This conversation is encrypted and the key pair is not unlocked: give the passphrase."""

    code = "locked"


class NoKeyBackup(EncryptionError):
    """This user has not set up end-to-end encryption yet (no key backup on the server)."""

    code = "no_key"


class WrongPassphraseError(EncryptionError):
    """The passphrase does not unlock this user's key backup."""

    code = "wrong_passphrase"


class MissingKeys(EncryptionError):
    """Some members have not set up encryption; nobody can write to them encrypted yet."""

    code = "missing_keys"


class KeyChanged(EncryptionError):
    """A contact's key changed since it was pinned: accept it (`accept_key`) before sending."""

    code = "key_changed"


class EncryptionDowngrade(EncryptionError):
    """The server calls a conversation plaintext that was pinned as encrypted: nothing is sent."""

    code = "downgrade"
