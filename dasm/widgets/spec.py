"""The settings of one :class:`~dasm.widgets.DistillPanel` run, read from its controls when Run is pressed.

:class:`RunSpec` turns the control values into :func:`dasm.runs.distill_run` arguments (0 in
a number box means "the preset's value"), names the run folder and says how many
distillation iterations the run will make, so the panel can size its progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig, applicable, resolve
from ..methods import method as method_spec


@dataclass(frozen=True)
class RunSpec:
    """One run's settings; ``extra`` holds further :func:`~dasm.runs.distill_run` overrides (e.g. ``lr_img``)."""

    dataset: str
    method: str
    ipc: int
    segments: int
    score: str
    policy: str
    preset: str
    device: str
    seed: int
    iterations: int
    probe_epochs: int
    out: str
    evaluate: bool
    eval_epochs: int
    extra: dict = field(default_factory=dict)

    @property
    def is_dasm(self) -> bool:
        """Whether the method distills in difficulty-aligned segments."""
        return method_spec(self.method).segments

    @property
    def is_coreset(self) -> bool:
        """Whether the method only selects real images (no iterations)."""
        return method_spec(self.method).family in ("coreset", "starts")

    @property
    def can_stop(self) -> bool:
        """Whether Stop can end this method early (coreset selections run to the end)."""
        return not self.is_coreset

    def config(self) -> RunConfig:
        """The resolved configuration of the run (raises a ValueError naming a bad setting)."""
        return resolve(self.preset, self.dataset, self.method, self.ipc, seed=self.seed, **self.overrides())

    def folder(self) -> Path:
        """``<out>/<dataset>-<method>-ipc<ipc>-seed<seed>-<key>``: named by every setting, so a changed
        setting starts a new run and an unchanged one resumes or loads."""
        return Path(self.out) / self.config().name()

    def overrides(self) -> dict:
        """Keyword overrides for :func:`~dasm.runs.distill_run` (only the knobs this method has)."""
        over: dict = {}
        if self.is_coreset:
            return over
        if self.iterations > 0:
            over["iterations"] = self.iterations
        if self.is_dasm:
            over.update(segments=self.segments, score=self.score, policy=self.policy)
            if self.probe_epochs > 0:
                over["probe_epochs"] = self.probe_epochs
        return applicable(self.method, {**over, **self.extra})

    def plan(self) -> tuple[int, int]:
        """(total iterations, iterations per segment) of the run; (1, 1) for a selection, which has none."""
        total, per_segment = self.config().iterations()
        return (total, per_segment) if total else (1, 1)

    def evaluation_epochs(self) -> int | None:
        """Epochs of the evaluation (``None``: the preset's protocol)."""
        return self.eval_epochs if self.eval_epochs > 0 else None
