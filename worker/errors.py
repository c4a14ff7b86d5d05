"""Exceptions a handler may raise to steer what happens to its job."""

from __future__ import annotations


class PermanentError(Exception):
    """The job cannot succeed however often it is tried: it fails at once, no retry."""


class JobCancelled(Exception):
    """Raised by `JobContext.raise_if_cancelled` in a sync handler whose job was canceled."""


class PayloadRejected(PermanentError):
    """The stored payload does not fit the handler's payload type (a pydantic model or a
    dataclass): the job fails at once, naming the bad fields, and its handler never runs."""
