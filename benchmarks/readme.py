"""The README's generated blocks: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

Every benchmark that feeds the README rewrites its block from its committed CSV, and the tests
check that each block still equals what the CSV renders to, so no number in the README is typed
by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"


def _split(name: str, readme: Path) -> tuple[str, str, str]:
    """``readme``'s text before block ``name`` (through its start marker), the block, and the rest
    (from its end marker); an empty block may be written as the two markers on adjacent lines."""
    start, end = _markers(name)
    before, found, rest = readme.read_text().partition(start)
    if rest.startswith(end.lstrip("\n")):
        rest = "\n" + rest
    body, found_end, after = rest.partition(end)
    if not found or not found_end:
        raise KeyError(f"{readme} has no block {name!r} (markers {start.strip()} ... {end.strip()}).")
    return before + start, body, end + after


def has_block(name: str, readme: Path = README) -> bool:
    """Whether ``readme`` has block ``name`` (both markers)."""
    try:
        _split(name, readme)
    except KeyError:
        return False
    return True


def read_block(name: str, readme: Path = README) -> str:
    """The current text of block ``name``."""
    return _split(name, readme)[1]


def write_block(name: str, body: str, readme: Path = README) -> None:
    """Replace block ``name`` with ``body``."""
    before, _, after = _split(name, readme)
    tmp = readme.with_name(f".{readme.name}.{os.getpid()}.tmp")   # a reader never sees half a README
    tmp.write_text(before + body + after)
    os.replace(tmp, readme)
