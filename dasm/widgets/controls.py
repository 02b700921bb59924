"""The DistillPanel's setting controls: one widget per setting, read into :class:`~dasm.widgets.spec.RunSpec` fields.

A number the preset may choose (iterations, probe epochs, evaluation epochs) is a text box: empty
means "the preset's value" and shows it greyed (``preset: 60``), never as a ``0``. Which controls
are enabled follows :func:`dasm.config.applicable`: a setting the chosen method does not take is
greyed out, and every control is locked while a run goes.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..config import PRESETS, RunConfig, applicable, knobs
from ..data import list_datasets
from ..methods import REGISTRY
from .spec import CONTROL_KNOBS

PRESET_DEFAULT = "preset default"
OPTIONAL_NUMBERS = ("iterations", "probe_epochs", "eval_epochs")
_EMPTY_TIP = "leave empty for the preset's value"


def make_controls(**values: object) -> dict[str, widgets.ValueWidget]:
    """One widget per setting (CSS class ``dasm-control-<name>``), holding ``values`` (``None``: preset default)."""
    number = lambda description: widgets.Text(description=description, placeholder=PRESET_DEFAULT,  # noqa: E731
                                              tooltip=_EMPTY_TIP, continuous_update=True)
    knob = knobs()   # the settings' choices and help come from the configs' fields, as the CLI's flags do
    controls = {
        "dataset": widgets.Dropdown(options=list_datasets(), description="dataset"),
        "method": widgets.Dropdown(options=list(REGISTRY), description="method"),
        "ipc": widgets.IntText(description="IPC", tooltip="images per class"),
        "segments": widgets.IntSlider(min=1, max=max(10, int(values["segments"])), description="segments"),
        "score": widgets.Dropdown(options=list(knob["score"].choices), description="score"),
        "policy": widgets.Dropdown(options=list(knob["policy"].choices), description="policy"),
        "probe_epochs": number("probe epochs"),
        "preset": widgets.Dropdown(options=list(PRESETS), description="preset"),
        "iterations": number("iterations"),
        "device": widgets.Text(description="device", tooltip="auto, cpu, cuda, cuda:1, ..."),
        "seed": widgets.IntText(description="seed"),
        "out": widgets.Text(description="out folder"),
        "evaluate": widgets.Checkbox(description="evaluate after the run", indent=False),
        "eval_epochs": number("eval epochs"),
    }
    for name, w in controls.items():
        if name in knob:
            w.tooltip = knob[name].help + (f" ({_EMPTY_TIP})" if name in OPTIONAL_NUMBERS else "")
        w.style = {"description_width": "100px"}
        w.layout = widgets.Layout(width="290px")
        w.add_class(f"dasm-control-{name.replace('_', '-')}")
        write_control(controls, name, values[name])
    return controls


def write_control(controls: dict[str, widgets.ValueWidget], name: str, value: object) -> None:
    """Show ``value`` in control ``name`` (``None`` in a number box: the preset's value, an empty box)."""
    if name in OPTIONAL_NUMBERS:
        value = "" if value is None else str(value).strip()
    controls[name].value = value


def parse_number(name: str, text: str) -> int | None:
    """The whole number typed into the box of setting ``name``; ``None`` for an empty box (the preset's value).

    Raises a ValueError with one line saying what is wrong otherwise.
    """
    text = str(text).strip()
    if not text:
        return None
    label = name.replace("_", " ")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{label} must be a whole number ({_EMPTY_TIP}), got {text!r}.") from None
    if value < 1:
        raise ValueError(f"{label} must be at least 1 ({_EMPTY_TIP}), got {value}.")
    return value


def read_controls(controls: dict[str, widgets.ValueWidget]) -> dict[str, object]:
    """The controls' values as :class:`~dasm.widgets.spec.RunSpec` fields (raises a ValueError for a bad number)."""
    return {name: parse_number(name, w.value) if name in OPTIONAL_NUMBERS else w.value for name, w in controls.items()}


def takes(method: str, name: str) -> bool:
    """Whether control ``name`` means anything for ``method`` (a setting it takes, or one every run has)."""
    if name in CONTROL_KNOBS:
        return name in applicable(method, {name: 1})
    return True


def lock_controls(controls: dict[str, widgets.ValueWidget], locked: bool) -> None:
    """Disable every control while a run goes (``locked``); else enable those the chosen method takes."""
    method = controls["method"].value
    for name, w in controls.items():
        w.disabled = locked or not takes(method, name)


def show_preset_values(controls: dict[str, widgets.ValueWidget], cfg: RunConfig | None) -> None:
    """Write the preset's value into each empty number box's placeholder (``preset: 60``); just
    ``preset default`` where ``cfg`` is None (settings that do not resolve) or has no such value."""
    values = {}
    if cfg is not None:
        values["iterations"] = cfg.distill.iterations if cfg.distill is not None and cfg.iterations()[0] else None
        values["probe_epochs"] = cfg.sequential.probe_epochs if cfg.sequential is not None else None
        values["eval_epochs"] = cfg.protocol().recipe.epochs
    for name in OPTIONAL_NUMBERS:
        value = values.get(name)
        controls[name].placeholder = PRESET_DEFAULT if value is None else f"preset: {value}"
