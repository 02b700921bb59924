"""The settings of one :class:`~dasm.widgets.DistillPanel` run, read from its controls when Run is pressed.

:class:`RunSpec` turns the control values into :func:`dasm.runs.distill_run` arguments (0 in
a number box means "the preset's value"), names the run folder and says how many
distillation iterations the run will make, so the panel can size its progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..coreset import CORESET_METHODS
from ..runs import run_config

DASM_DISTILLERS = ("dasm", "dasm-nodifficulty")   # the methods that take segments, score, policy, probes


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
        return self.method in DASM_DISTILLERS

    @property
    def is_coreset(self) -> bool:
        """Whether the method only selects real images (no iterations)."""
        return self.method in CORESET_METHODS

    @property
    def can_stop(self) -> bool:
        """Whether Stop can end this method early (coreset selections run to the end)."""
        return not self.is_coreset

    def folder(self) -> Path:
        """``<out>/<dataset>-<method>-ipc<ipc>-seed<seed>``: one folder per setting, so runs never collide."""
        return Path(self.out) / f"{self.dataset}-{self.method}-ipc{self.ipc}-seed{self.seed}"

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
        return {**over, **self.extra}

    def plan(self) -> tuple[int, int]:
        """(total iterations, iterations per segment) of the run; (1, 1) for a coreset, which has none."""
        cfg, _ = run_config(self.dataset, self.method, self.ipc, preset=self.preset, seed=self.seed,
                            **self.overrides())
        if cfg is None:
            return 1, 1
        if self.is_dasm:
            per_segment = cfg.segment_iterations()
            return per_segment * cfg.segments + cfg.joint_iterations(), per_segment
        return cfg.iterations, cfg.iterations

    def evaluation_epochs(self) -> int | None:
        """Epochs of the evaluation (``None``: the preset's protocol)."""
        return self.eval_epochs if self.eval_epochs > 0 else None
