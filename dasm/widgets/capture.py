"""Catch what one worker thread prints (stdout and stderr, tqdm included) without touching other threads.

:func:`thread_output` puts a small router on ``sys.stdout``/``sys.stderr`` while any thread
is being captured: writes from a captured thread go to its sink, all others to the stream
that was there before, and the router removes itself when the last capture ends.
:class:`LogBuffer` keeps the captured text the way a terminal would show it.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_STREAMS = ("stdout", "stderr")
_lock = threading.Lock()


class _Router:
    """A stand-in for a ``sys`` stream that sends each thread's writes to that thread's sink, if any."""

    def __init__(self, original) -> None:
        self.original = original
        self.sinks: dict[int, Callable[[str], None]] = {}

    def write(self, text: str) -> int:
        sink = self.sinks.get(threading.get_ident())
        if sink is None:
            return self.original.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.sinks:
            self.original.flush()

    def isatty(self) -> bool:
        return False if threading.get_ident() in self.sinks else self.original.isatty()

    def __getattr__(self, name: str):
        return getattr(self.original, name)


@contextmanager
def thread_output(sink: Callable[[str], None]) -> Iterator[None]:
    """Inside the block, text the current thread writes to stdout or stderr goes to ``sink`` instead."""
    ident = threading.get_ident()
    with _lock:
        routers = []
        for name in _STREAMS:
            current = getattr(sys, name)
            router = current if isinstance(current, _Router) else _Router(current)
            setattr(sys, name, router)
            router.sinks[ident] = sink
            routers.append(router)
    try:
        yield
    finally:
        with _lock:
            for name, router in zip(_STREAMS, routers):
                router.sinks.pop(ident, None)
                if not router.sinks and getattr(sys, name) is router:
                    setattr(sys, name, router.original)


class LogBuffer:
    """Captured text with carriage returns applied (a tqdm bar redraws its line), keeping the last ``max_lines``."""

    def __init__(self, max_lines: int = 200) -> None:
        self.max_lines = max_lines
        self._lines = [""]
        self._return = False  # a "\r" was seen: the next text replaces the current line
        self._lock = threading.Lock()
        self.version = 0      # bumped on every write, so a view can tell when to redraw

    def write(self, text: str) -> None:
        """Add ``text`` as a terminal would show it."""
        with self._lock:
            for i, piece in enumerate(text.split("\n")):
                if i:
                    self._lines.append("")
                    self._return = False
                for j, part in enumerate(piece.split("\r")):
                    if j:
                        self._return = True
                    if part:
                        self._lines[-1] = part if self._return else self._lines[-1] + part
                        self._return = False
            del self._lines[:-self.max_lines]
            self.version += 1

    def clear(self) -> None:
        """Forget everything written so far."""
        with self._lock:
            self._lines, self._return = [""], False
            self.version += 1

    def text(self) -> str:
        """What a terminal would show now (the last ``max_lines`` lines)."""
        with self._lock:
            return "\n".join(self._lines)
