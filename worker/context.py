"""What a handler gets besides its payload."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from conveyor.worker.errors import JobCancelled


@dataclass(slots=True)
class JobContext:
    job_id: str
    type: str
    queue: str
    attempt: int  # 1 for the first execution; a reclaimed or retried job sees more
    max_attempts: int
    correlation_id: str | None
    worker_id: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("conveyor.job"))
    # Set when the job was canceled, timed out, or the worker is shutting down. Async
    # handlers are also cancelled (CancelledError); sync handlers should check this.
    cancelled: threading.Event = field(default_factory=threading.Event)

    def raise_if_cancelled(self) -> None:
        """For sync handlers: stop here if the job should stop."""
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)
