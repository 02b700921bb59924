"""The generated Markdown: every table the README and the docs pages show, rendered from committed CSVs.

A page holds generated blocks between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; :data:`BLOCKS`
says which page holds each block and which function renders it (each reads its committed CSVs under
``benchmarks/results``). Benchmarks rewrite their blocks after every cell; ``python -m
benchmarks.report`` rewrites them all, and ``--check`` lists those that are stale. No number on a
page is typed by hand. :func:`mean_std` and :func:`to_markdown` are the one way tables are written.
"""

from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def mean_std(values: pd.Series | list[float], digits: int = 1, count: bool = False) -> str:
    """``mean ± std`` over seeds (the mean alone for one value, nothing for none); ``count`` adds ``(n)``."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return ""
    text = f"{v.mean():.{digits}f}" + (f" ± {v.std():.{digits}f}" if len(v) > 1 else "")
    return text + (f" ({len(v)})" if count else "")


def signed(value: float, digits: int = 2) -> str:
    """``+0.12`` / ``−0.12``: a difference, with its sign always shown."""
    return f"{value:+.{digits}f}".replace("-", "−")


def interval_words(values: pd.Series) -> str:
    """How many seeds, the paired 95% interval of ``values`` (one difference per seed) and whether it
    excludes zero; a single seed says it has no interval."""
    from dasm.analysis.by_difficulty import paired_summary

    s = paired_summary(values)
    if s["count"] < 2:
        return f"{s['count']} seed: no interval"
    return (f"{s['count']} seeds, 95% interval [{signed(s['ci_low'])}, {signed(s['ci_high'])}] "
            + ("includes zero" if s["ci_low"] <= 0 <= s["ci_high"] else "excludes zero"))


def to_markdown(table: pd.DataFrame) -> str:
    """A pipe table of ``table`` as it is (its columns as the header; missing values empty)."""
    def cell(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def from_csv(path: Path, render: Callable[[pd.DataFrame], str], command: str, **read: object) -> str:
    """``render`` of the committed CSV at ``path``, or a line saying which ``command`` writes it while it does not
    exist yet (a block never shows a number that was not measured)."""
    if not Path(path).exists():
        return f"Not measured yet: `{command}` writes `benchmarks/results/{Path(path).name}`."
    return render(pd.read_csv(path, **read))


# ---------------------------------------------------------------------------------------
# Blocks and the pages that hold them
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """A generated block: its name, the page (relative to the project root) and ``module:function`` that
    renders its body from the committed CSVs."""

    name: str
    page: str
    render: str

    def body(self) -> str:
        module, _, func = self.render.partition(":")
        fn: Callable[[], str] = getattr(importlib.import_module(module), func)
        return fn()


BLOCKS: tuple[Block, ...] = (
    Block("headline", "README.md", "benchmarks.distill:headline_block"),
    Block("diagnosis", "README.md", "benchmarks.figures:readme_block"),
    Block("distill", "docs/results.md", "benchmarks.distill:distill_block"),
    Block("accuracy-fashion-mnist", "docs/results.md", "benchmarks.accuracy:fashion_block"),
    Block("accuracy-digits", "docs/results.md", "benchmarks.accuracy:digits_block"),
    Block("demo", "docs/results.md", "benchmarks.demo:demo_block"),
    Block("bias", "docs/diagnosis.md", "benchmarks.diagnosis:bias_block"),
    Block("regime", "docs/diagnosis.md", "benchmarks.regime:regime_block"),
    Block("figures", "docs/diagnosis.md", "benchmarks.figures:figures_block"),
    Block("preset-test-choices", "docs/presets.md", "benchmarks.report:test_choices_block"),
    Block("tune-fashion-mnist-idc-1", "docs/presets.md", "benchmarks.tune:idc1_block"),
    Block("tune-fashion-mnist-idc-10", "docs/presets.md", "benchmarks.tune:idc10_block"),
    Block("tune-fashion-mnist-idc-50", "docs/presets.md", "benchmarks.tune:idc50_block"),
    Block("tune-fashion-mnist-dasm-50", "docs/presets.md", "benchmarks.tune:dasm50_block"),
    Block("speed", "docs/speed.md", "benchmarks.speed:cpu_block"),
    Block("speed-cuda", "docs/gpu.md", "benchmarks.speed:cuda_block"),
    Block("distill-cuda", "docs/gpu.md", "benchmarks.distill:cuda_block"),
    Block("paper-time-cuda", "docs/gpu.md", "benchmarks.paper_time:cuda_block"),
)


def test_choices_block() -> str:
    """docs/presets.md: the settings chosen on test accuracy, with what was measured (``preset_evidence.csv``)."""
    t = pd.read_csv(ROOT / "benchmarks" / "results" / "preset_evidence.csv")
    t = t[t.chosen_on == "test"]
    shown = pd.DataFrame({"setting": t.setting, "in the preset": t.preset_value, "data": t.dataset,
                          "method, IPC": t.method + " " + t.ipc.astype(str), "variant": t.variant,
                          "test accuracy (%)": t.accuracy.map("{:g}".format), "seeds": t.seeds,
                          "note": t.note.fillna("")})
    return to_markdown(shown)


def block(name: str) -> Block:
    """The block called ``name``."""
    for b in BLOCKS:
        if b.name == name:
            return b
    raise KeyError(f"No generated block {name!r}; the blocks are {', '.join(b.name for b in BLOCKS)}.")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"


def _split(name: str, page: Path) -> tuple[str, str, str]:
    """``page``'s text before block ``name`` (through its start marker), the block, and the rest."""
    start, end = _markers(name)
    before, found, rest = page.read_text().partition(start)
    if rest.startswith(end.lstrip("\n")):   # an empty block: the two markers on adjacent lines
        rest = "\n" + rest
    body, found_end, after = rest.partition(end)
    if not found or not found_end:
        raise KeyError(f"{page} has no block {name!r} (markers {start.strip()} ... {end.strip()}).")
    return before + start, body, end + after


def read_block(name: str, page: Path | None = None) -> str:
    """The current text of block ``name`` on its page (or on ``page``)."""
    return _split(name, page or ROOT / block(name).page)[1]


def write_block(name: str, body: str | None = None, page: Path | None = None) -> None:
    """Replace block ``name`` on its page (or on ``page``) with ``body`` (default: its render)."""
    page = page or ROOT / block(name).page
    before, _, after = _split(name, page)
    text = block(name).body() if body is None else body
    tmp = page.with_name(f".{page.name}.{os.getpid()}.tmp")   # a reader never sees half a page
    tmp.write_text(before + text + after)
    os.replace(tmp, page)


def stale() -> list[str]:
    """The blocks whose page text differs from what their CSVs render to now."""
    return [b.name for b in BLOCKS if read_block(b.name) != b.body()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="list stale blocks and exit 1 if any, write nothing")
    p.add_argument("names", nargs="*", help="blocks to rewrite (default: all)")
    args = p.parse_args()
    if args.check:
        old = stale()
        print("\n".join(old) or "every block is current")
        raise SystemExit(1 if old else 0)
    for name in args.names or [b.name for b in BLOCKS]:
        write_block(name)
        print(f"{name} -> {block(name).page}")


if __name__ == "__main__":
    main()
