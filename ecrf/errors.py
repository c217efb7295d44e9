"""Domain errors raised by services: views turn them into 4xx pages and API responses, the CLI
into a one-line message and exit code 1."""


class EcrfError(Exception):
    """A refused request, with a message meant for the user."""

    #: The HTTP status a view answers with.
    status = 400


class NotFound(EcrfError):
    status = 404


class PermissionDenied(EcrfError):
    status = 403


class Conflict(EcrfError):
    status = 409


class PreconditionRequired(EcrfError):
    """A change of something that exists, sent without the version it was based on (HTTP 428)."""

    status = 428


class Invalid(EcrfError):
    """Data that breaks the rules; ``errors`` is a list of (JSON pointer, message)."""

    status = 422

    def __init__(self, message, errors=()):
        super().__init__(message)
        self.errors = list(errors)
