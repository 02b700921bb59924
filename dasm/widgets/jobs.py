"""One background worker for a panel's views: the latest request wins, nothing runs in a click handler.

:class:`LatestJob` runs submitted jobs one at a time in a daemon thread. A job submitted while
another runs waits and replaces any job still waiting, so a burst of changes computes the last
one only; each job gets its generation number, and :meth:`LatestJob.is_current` tells it whether
a newer request came in (then it must not show what it computed: that view would be stale).
"""

from __future__ import annotations

import threading
import traceback
from typing import Callable


class LatestJob:
    """A single worker thread that runs the most recently submitted job (``job(generation)``)."""

    def __init__(self, name: str = "dasm-panel-job") -> None:
        self.name = name
        self.generation = 0
        self._pending: tuple[int, Callable[[int], None]] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, job: Callable[[int], None]) -> int:
        """Queue ``job`` (replacing any job not yet started) and return its generation; returns at once."""
        with self._lock:
            self.generation += 1
            self._pending = (self.generation, job)
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name=self.name, daemon=True)
                self._thread.start()
            return self.generation

    def is_current(self, generation: int) -> bool:
        """Whether no request came in after the job of ``generation``."""
        return generation == self.generation

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits."""
        return not self._idle.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has run (at most ``timeout`` seconds); return whether they have."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._pending is None:
                    self._thread = None
                    self._idle.set()
                    return
                generation, job = self._pending
                self._pending = None
            try:
                job(generation)   # a job reports its own errors in its panel
            except Exception:     # a last guard: the worker must go on, or wait() would never return
                traceback.print_exc()
