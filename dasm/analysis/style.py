"""The project's figure style: one matplotlib style file, a colour-blind palette, fixed method colours."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

STYLE_FILE = Path(__file__).with_name("dasm.mplstyle")

# One colour per method everywhere, so a method looks the same in every figure.
METHOD_COLORS = {
    "full": "#000000", "random": "#949494", "herding": "#ca9161", "kcenter": "#fbafe4", "idc-starts": "#7fb8e0",
    "dc": "#56b4e9", "dsa": "#029e73", "dm": "#cc78bc", "idc": "#0173b2", "dasm": "#d55e00",
    "dasm-nodifficulty": "#de8f05", "static-prune": "#ece133",
}

UNKNOWN_COLOR = "#4d4d4d"


def method_color(method: str) -> str:
    """The colour of ``method`` in every figure (``idc-ipc10`` takes idc's; grey for unknown ones)."""
    name = str(method)
    return METHOD_COLORS.get(name, METHOD_COLORS.get(name.split("-ipc")[0].rstrip("'"), UNKNOWN_COLOR))


def set_colors(names: list[str]) -> dict[str, str]:
    """A colour per set name: its method's (``idc-ipc50`` takes idc's); a set whose method is unknown
    or whose colour another set already has takes the next free colour of the style cycle, then tab10."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    with dasm_style():
        cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", []) + list(plt.get_cmap("tab10").colors)
    spare = iter(dict.fromkeys(to_hex(c) for c in cycle))
    out: dict[str, str] = {}
    for name in names:
        color = method_color(str(name).lower())
        if color == UNKNOWN_COLOR or color in out.values():
            color = next((c for c in spare if c not in out.values()), UNKNOWN_COLOR)
        out[name] = color
    return out


@contextmanager
def dasm_style() -> Iterator[None]:
    """Draw inside ``with dasm_style():`` to use the project's style without changing global settings."""
    import matplotlib.pyplot as plt

    with plt.style.context(str(STYLE_FILE)):
        yield
