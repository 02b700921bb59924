"""What the DistillPanel says about a run: its status line in each phase and its per-segment table.

Every function here turns a run's configuration and the logs :func:`dasm.runs.distill_run` hands its
callbacks into text, so the status line always names what the run is doing now: loading data,
training a probe, distilling a segment, the joint pass, evaluating.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..config import RunConfig


def segments_html(rows: list[dict]) -> str:
    """An HTML table of DASM segment logs: probe accuracy, difficulty window, pool size, loss and seconds."""
    if not rows:
        return ""
    head = ("segment", "IPC", "probe acc", "difficulty window", "pool size", "final loss", "seconds")
    body = []
    for r in rows:
        if "probe_val_acc" in r:
            probe = f"{r['probe_val_acc']:.1f}% (val)"
        elif "probe_real_acc" in r:
            probe = f"{r['probe_real_acc']:.1f}% (train)"
        else:
            probe = "no probe"
        window = f"{r['quantile_lo']:.2f} – {r['quantile_hi']:.2f}" if "score_mean" in r else "all data"
        name = "joint" if r.get("stage") == "joint" else int(r["segment"]) + 1
        cells = (name, r.get("ipc", ""), probe, window, r.get("pool_size", ""),
                 f"{r['final_loss']:.4g}" if "final_loss" in r else "", f"{r.get('seconds', 0.0):.1f}")
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f'<table class="dasm-segment-table">{header}{"".join(body)}</table>'


def segment_line(log: dict, segments: int) -> str:
    """One log line for a finished segment (or the joint pass): probe accuracy, pool, loss and time."""
    acc = log.get("probe_val_acc", log.get("probe_real_acc"))
    probe = f"probe acc {acc:.1f}%, " if acc is not None else ""
    name = "joint pass" if log.get("stage") == "joint" else f"segment {int(log['segment']) + 1}/{segments}"
    return (f"{name}: {probe}pool {log.get('pool_size')}, "
            f"final loss {log.get('final_loss', float('nan')):.4g}, {log.get('seconds', 0.0):.1f} s")


def uses_probes(cfg: RunConfig) -> bool:
    """Whether a sequential run trains a probe before each segment after the first."""
    seq = cfg.sequential
    return seq is not None and (seq.policy != "none" or seq.match_net != "fresh")


def _probe_phrase(cfg: RunConfig, k: int) -> str:
    """What happens before segment ``k`` (0-based) is distilled."""
    K = cfg.sequential.segments
    if k >= K:
        return f"joint pass over all {K} segments against all real data ..."
    if k == 0 or not uses_probes(cfg):
        return f"distilling segment {k + 1}/{K} ..."
    return (f"training the probe for segment {k + 1}/{K} on the {k} segment(s) so far "
            f"({cfg.sequential.probe_epochs} epochs) and scoring the real data ...")


def start_message(cfg: RunConfig, state: str, folder: Path) -> str:
    """The status when the data is loaded and the run begins (``state``: see :func:`~dasm.widgets.spec.folder_state`)."""
    what = f"{cfg.method} IPC {cfg.ipc} on {cfg.dataset}"
    if state == "finished":
        return f"Loading the finished run {what} from {folder} ..."
    embed = (f" (first the {cfg.features.feature_width}-wide embedding network, {cfg.features.feature_epochs} "
             "epochs, unless cached)") if cfg.features is not None else ""
    if cfg.family in ("coreset", "starts"):
        return f"Selecting {what}{embed} ..."
    if cfg.sequential is None:
        verb = "Resuming" if state == "stopped" else "Distilling"
        return f"{verb} {what} into {folder}{embed} ..."
    done = sum(1 for k in range(cfg.sequential.segments) if (folder / f"segment{k}" / "done.json").exists())
    if state == "stopped":
        return f"Resuming {what} ({done} of {cfg.sequential.segments} segments finished): {_probe_phrase(cfg, done)}"
    return f"Distilling {what}{embed}: {_probe_phrase(cfg, 0)}"


def iteration_message(log: dict, cfg: RunConfig, done: int, total: int, stage_total: int) -> str:
    """The status after an iteration: which segment (or the joint pass), its iteration and the overall count."""
    step = int(log["iteration"]) + 1
    overall = f"iteration {done}/{total}"
    if cfg.sequential is None:
        return f"Distilling {cfg.method} IPC {cfg.ipc}: {overall}"
    K = cfg.sequential.segments
    stage = "joint pass" if log.get("stage") == "joint" else f"segment {int(log.get('segment', 0)) + 1}/{K}"
    return f"Distilling {stage}: iteration {step}/{stage_total} ({overall} overall)"


def after_segment_message(log: dict, cfg: RunConfig) -> str | None:
    """The status once a segment is finished: what the run does next (None after the joint pass)."""
    if log.get("stage") == "joint":
        return None
    k = int(log["segment"]) + 1
    if k >= cfg.sequential.segments and cfg.sequential.joint_iterations() == 0:
        return None
    return f"Segment {k}/{cfg.sequential.segments} done; {_probe_phrase(cfg, k)}"


def evaluation_message(cfg: RunConfig, seed: int, epochs: int | None) -> str:
    """The status while the finished set is evaluated."""
    protocol = cfg.protocol()
    n = epochs or protocol.recipe.epochs
    return (f"Evaluating seed {seed}: training a fresh {protocol.arch} on the set for {n} epochs and testing it "
            "(an evaluation runs to its end) ...")
