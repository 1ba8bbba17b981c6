"""Domain errors raised by services; each transport maps them to its own reply in one place."""


class DomainError(Exception):
    code = "invalid"

    def __init__(self, detail: str = "", **extra):
        super().__init__(detail or self.__doc__ or self.code)
        self.detail = detail or (self.__doc__ or self.code).strip()
        self.extra = extra


class Invalid(DomainError):
    """The request is malformed."""

    code = "invalid"


class NotFound(DomainError):
    """No such thing, or not visible to you."""

    code = "not_found"


class Forbidden(DomainError):
    """You may not do that."""

    code = "forbidden"


class NotMember(DomainError):
    """You are not a member of that conversation."""

    code = "not_member"


class RateLimited(DomainError):
    """Too many requests; slow down."""

    code = "rate_limited"


class TooLarge(DomainError):
    """That is too large."""

    code = "too_large"


class Unavailable(DomainError):
    """The server could not do that just now (its database or channel layer failed); try again."""

    code = "unavailable"
