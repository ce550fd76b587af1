"""The one error hierarchy. Domain code raises these; `api` maps them to HTTP once."""

from __future__ import annotations


class MoEError(Exception):
    """Base error: carries an HTTP status, an OpenAI-style error type and the offending field."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(MoEError):
    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(MoEError):
    status_code = 401
    error_type = "authentication_error"


class NotFound(MoEError):
    status_code = 404
    error_type = "not_found_error"


class Conflict(MoEError):
    status_code = 409
    error_type = "conflict_error"


class Unprocessable(MoEError):
    status_code = 422
    error_type = "invalid_request_error"


class NoExpertAvailable(MoEError):
    status_code = 503
    error_type = "service_unavailable"


class UpstreamError(MoEError):
    """A remote expert failed or answered nonsense."""

    status_code = 502
    error_type = "upstream_error"
