"""The README's generated blocks: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

Every benchmark that feeds the README rewrites its block from its committed CSV, and the tests
check that each block still equals what the CSV renders to, so no number in the README is typed
by hand.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"


def read_block(name: str, readme: Path = README) -> str:
    """The current text of block ``name``."""
    start, end = _markers(name)
    text = readme.read_text()
    if start not in text or end not in text:
        raise KeyError(f"{readme} has no block {name!r} (markers {start.strip()} ... {end.strip()}).")
    return text.split(start, 1)[1].split(end, 1)[0]


def write_block(name: str, body: str, readme: Path = README) -> None:
    """Replace block ``name`` with ``body``."""
    read_block(name, readme)   # says which markers are missing
    start, end = _markers(name)
    before, rest = readme.read_text().split(start, 1)
    readme.write_text(before + start + body + end + rest.split(end, 1)[1])
