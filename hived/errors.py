"""Errors the daemon reports to clients; the API maps each to its HTTP status."""


class HiveError(Exception):
    status_code = 400


class NotFound(HiveError):
    status_code = 404


class Conflict(HiveError):
    status_code = 409


class Invalid(HiveError):
    status_code = 422


class Forbidden(HiveError):
    status_code = 403
