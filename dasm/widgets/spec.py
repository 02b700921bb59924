"""The settings of one :class:`~dasm.widgets.DistillPanel` run, read from its controls when Run is pressed.

:class:`RunSpec` turns the control values into one resolved :class:`~dasm.config.RunConfig`
(``None`` in a number means "the preset's value"), checks it before any data is loaded, names the
run folder by every setting and says how many distillation iterations the run will make, so the
panel can size its progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig, applicable, knobs, resolve
from ..device import resolve_device
from ..methods import method as method_spec

# Training images in the smallest class of each known dataset, as dasm.data.load_dataset loads it
# (no validation split), so an IPC too large for the data is refused without loading it.
SMALLEST_CLASS = {"digits": 139, "mnist": 5421, "fashion-mnist": 6000, "cifar10": 5000, "cifar100": 500,
                  "svhn": 4659}
CONTROL_KNOBS = ("iterations", "segments", "score", "policy", "probe_epochs")


@dataclass(frozen=True)
class RunSpec:
    """One run's settings; ``extra`` holds further :func:`~dasm.config.resolve` overrides (e.g. ``lr_img``)."""

    dataset: str
    method: str
    ipc: int
    segments: int
    score: str
    policy: str
    preset: str
    device: str
    seed: int
    iterations: int | None
    probe_epochs: int | None
    out: str
    evaluate: bool
    eval_epochs: int | None
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

    def check(self) -> RunConfig:
        """:meth:`config`, after every check that needs no data: the device exists, segments fit the IPC and
        the IPC fits the dataset's smallest class. Raises a ValueError with one line saying what is wrong."""
        if not str(self.out).strip():
            raise ValueError("The out folder is empty: name a folder for the run.")
        if self.is_dasm and isinstance(self.ipc, int) and 0 < self.ipc < self.segments:
            raise ValueError(f"{self.segments} segments need at least {self.segments} images per class, "
                             f"but IPC is {self.ipc}: use at most {self.ipc} segments or a larger IPC.")
        cfg = self.config()
        _check_class_size(cfg)
        resolve_device(self.device)
        return cfg

    def folder(self) -> Path:
        """``<out>/<dataset>-<method>-ipc<ipc>-seed<seed>-<key>``: named by every setting, so a changed
        setting starts a new run and an unchanged one resumes or loads."""
        return Path(self.out) / self.config().name()

    def overrides(self) -> dict:
        """The settings of the controls and ``extra`` that this method takes (``None``: the preset's value);
        a name that is no setting at all is kept, so that :func:`~dasm.config.resolve` refuses it."""
        controls = {name: getattr(self, name) for name in CONTROL_KNOBS}
        unknown = {k: v for k, v in self.extra.items() if k not in knobs()}
        return {**applicable(self.method, {**controls, **self.extra}), **unknown}

    def plan(self) -> tuple[int, int]:
        """(total iterations, iterations per segment) of the run; (1, 1) for a selection, which has none."""
        total, per_segment = self.config().iterations()
        return (total, per_segment) if total else (1, 1)

    def evaluation_epochs(self) -> int | None:
        """Epochs of the evaluation (``None``: the preset's protocol)."""
        return self.eval_epochs


def _check_class_size(cfg: RunConfig) -> None:
    """Refuse an IPC that needs more real images per class than the dataset's smallest class holds."""
    smallest = SMALLEST_CLASS.get(cfg.dataset)
    if smallest is None:
        return
    d = cfg.distill
    factor = d.factor if d is not None and d.init != "noise" else 1
    if cfg.ipc * factor ** 2 > smallest:
        needs = f" with factor {factor} needs {cfg.ipc * factor ** 2} real images per class, but" if factor > 1 else ":"
        raise ValueError(f"IPC {cfg.ipc}{needs} the smallest class of {cfg.dataset} has {smallest} training "
                         f"images; choose IPC {smallest // factor ** 2} or less.")


def folder_state(folder: Path) -> str:
    """What a run folder holds: ``finished`` (a saved set), ``stopped`` (checkpoints a run resumes from) or ``new``."""
    folder = Path(folder)
    if (folder / "synthetic.pt").exists():
        return "finished"
    if folder.is_dir() and any(any(folder.rglob(name)) for name in ("checkpoint.pt", "partial.pt", "done.json")):
        return "stopped"
    return "new"
