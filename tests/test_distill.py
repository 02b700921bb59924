"""dasm.distill, dasm.config and dasm.runs: the engine learns, resumes exactly, freezes, fails clearly."""

from dataclasses import replace

import pandas as pd
import pytest
import torch

from dasm.config import preset_config, preset_protocol
from dasm.coreset import random_indices
from dasm.distill import (DistillationDivergedError, DistillConfig, config_for, distill, distill_segment,
                          resumed_seconds)
from dasm.evaluate import Protocol, train_and_test
from dasm.nets import get_network
from dasm.runs import distill_run, evaluate_run
from dasm.synthetic import new_synthetic_set
from dasm.train import Recipe

FAST = dict(width=32, iterations=12, match_steps=5, net_steps=2, batch_real=32, checkpoint_every=2)
EVAL = Protocol(recipe=Recipe(epochs=60), net_kwargs=(("width", 32),))


def test_matching_loss_falls_and_beats_random(digits):
    cfg = config_for("dsa", ipc=1, **FAST)
    syn, hist = distill(digits, cfg, progress=False)
    assert len(hist) == 12 and hist.loss.head(3).mean() > hist.loss.tail(3).mean()
    x, y = syn.decoded()
    distilled = train_and_test(digits, x, y, EVAL, seed=0, progress=False)["test_acc"]
    idx = random_indices(digits, 1, seed=0)
    rnd = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], EVAL, seed=0, progress=False)["test_acc"]
    assert distilled > rnd + 5, (distilled, rnd)


def test_idc_cpu_preset_beats_a_random_coreset(digits):
    cfg = preset_config("cpu", "digits", "idc", 1, iterations=15, width=32)
    syn, _ = distill(digits, cfg, progress=False)
    x, y = syn.decoded()
    idc = train_and_test(digits, x, y, EVAL, seed=0, progress=False)["test_acc"]
    idx = random_indices(digits, 1, seed=0)
    rnd = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], EVAL, seed=0, progress=False)["test_acc"]
    assert idc > rnd + 5, (idc, rnd)


@pytest.mark.parametrize("method", ["dc", "dm", "idc"])
def test_every_method_runs_and_changes_the_images(digits, method):
    cfg = config_for(method, ipc=2, **{**FAST, "iterations": 3})
    start = new_synthetic_set(digits, 2, cfg.factor, cfg.init, seed=0)
    syn, hist = distill(digits, cfg, progress=False)
    assert syn.images.shape == start.images.shape and torch.isfinite(syn.images).all()
    assert not torch.equal(syn.images, start.images) and (hist.loss > 0).all()


def test_resume_gives_the_same_result_as_an_uninterrupted_run(digits, tmp_path):
    cfg = config_for("idc", ipc=1, factor=2, **{**FAST, "iterations": 6})
    reference, ref_hist = distill(digits, cfg, progress=False)
    calls = []
    stop_after_3 = lambda: len(calls) >= 3  # noqa: E731
    partial, _ = distill(digits, cfg, out=tmp_path, progress=False, callback=calls.append, should_stop=stop_after_3)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["iteration"] == 3
    assert (tmp_path / "partial.pt").exists() and not (tmp_path / "synthetic.pt").exists()
    assert not torch.equal(partial.images, reference.images)
    assert torch.equal(calls[-1]["snapshot"]().images, partial.images)  # live views see the set as it stands
    resumed, hist = distill(digits, cfg, out=tmp_path, progress=False)
    assert torch.equal(resumed.images, reference.images)
    assert (tmp_path / "synthetic.pt").exists() and not (tmp_path / "partial.pt").exists()
    assert hist.loss.tolist() == pytest.approx(ref_hist.loss.tolist())
    with pytest.raises(ValueError, match="different run"):
        distill(digits, replace(cfg, lr_img=0.5), out=tmp_path, progress=False)


def test_a_resumed_run_reports_the_time_of_every_call(digits, tmp_path):
    out, calls = tmp_path / "idc", []
    kw = dict(progress=False, iterations=6, width=16, match_steps=3, net_steps=1, batch_real=16, checkpoint_every=1)
    distill_run(digits, "idc", 1, out, callback=calls.append, should_stop=lambda: len(calls) >= 5, **kw)
    assert not (out / "results.csv").exists()   # an interrupted call records no time
    distill_run(digits, "idc", 1, out, **kw)    # runs the last iteration only
    hist = pd.read_csv(out / "history.csv")
    assert hist.resumed.tolist() == [True] * 5 + [False]
    assert resumed_seconds(hist) == pytest.approx(hist.seconds.head(5).sum())
    seconds = pd.read_csv(out / "results.csv").query("metric == 'seconds'").value.item()
    assert seconds >= hist.seconds.sum()   # not just the second call's wall time


def test_seeded_runs_are_reproducible(digits):
    cfg = config_for("dsa", ipc=1, **{**FAST, "iterations": 2})
    a, _ = distill(digits, cfg, progress=False)
    b, _ = distill(digits, cfg, progress=False)
    c, _ = distill(digits, replace(cfg, seed=1), progress=False)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_earlier_segments_stay_frozen(digits):
    cfg = config_for("dsa", ipc=1, **{**FAST, "iterations": 2})
    syn = new_synthetic_set(digits, 1, seed=0)
    syn = syn.add_segment(*[t for t in new_synthetic_set(digits, 1, seed=1).decoded()])
    before = syn.images.clone()
    out, _ = distill_segment(digits, syn, cfg, train_segment=1, progress=False)
    assert torch.equal(out.images[syn.segment(0)], before[syn.segment(0)])
    assert not torch.equal(out.images[syn.segment(1)], before[syn.segment(1)])


def test_net_starts_replace_the_fresh_matching_network(digits):
    cfg = config_for("idc", ipc=1, factor=1, init="real", **{**FAST, "iterations": 1})
    syn = new_synthetic_set(digits, 1, seed=0)
    plain, _ = distill_segment(digits, syn, cfg, progress=False)
    torch.manual_seed(cfg.seed * 1_000_003)                  # the fresh network of iteration 0, segment 0
    fresh = get_network(cfg.arch, digits.channels, digits.num_classes, digits.im_size, **cfg.net_kwargs())
    same, _ = distill_segment(digits, syn, cfg, progress=False, net_starts=[fresh.state_dict()])
    assert torch.equal(same.images, plain.images)             # starting from that very network changes nothing
    trained = {k: v + 0.05 * torch.randn_like(v) for k, v in fresh.state_dict().items()}
    other, _ = distill_segment(digits, syn, cfg, progress=False, net_starts=[trained])
    assert not torch.equal(other.images, plain.images)        # the start is what the images are matched on


def test_pools_restrict_the_real_data(digits):
    cfg = config_for("dsa", ipc=1, **{**FAST, "iterations": 1})
    syn = new_synthetic_set(digits, 1)
    with pytest.raises(ValueError, match="non-empty index tensor for every class"):
        distill_segment(digits, syn, cfg, pools=[ix[:0] for ix in digits.class_index], progress=False)
    pools = [ix[:5] for ix in digits.class_index]
    out, _ = distill_segment(digits, syn, cfg, pools=pools, progress=False)
    assert torch.isfinite(out.images).all()


def test_nan_is_caught_and_explained(digits):
    bad = replace(digits, x_train=digits.x_train.clone())
    bad.x_train[bad.class_index[0]] = float("nan")
    cfg = config_for("dsa", ipc=1, init="noise", **{**FAST, "iterations": 1})
    with pytest.raises(DistillationDivergedError, match="Lower the image learning rate"):
        distill(bad, cfg, progress=False)


def test_config_validation():
    with pytest.raises(ValueError, match="choose one of dc, dsa, dm, idc"):
        DistillConfig(method="mtt")
    with pytest.raises(ValueError, match="ipc must be a positive integer"):
        DistillConfig(ipc=0)
    with pytest.raises(ValueError, match="choose one of cpu, paper"):
        preset_config("laptop", "digits", "idc", 10)
    paper = preset_config("paper", "fashion-mnist", "idc", 10)
    assert (paper.metric, paper.factor, paper.iterations, paper.match_steps, paper.batch_real) == ("l1", 2, 2000, 100, 64)
    assert paper.lr_img == pytest.approx(1e-4 * (28 / 32) ** 2) and paper.batch_syn_max == 128  # tests/test_paper_preset.py
    dsa = preset_config("paper", "fashion-mnist", "dsa", 50)
    assert (dsa.match_steps, dsa.net_steps, dsa.augment) == (50, 10, True)
    assert preset_protocol("paper", "fashion-mnist", "idc").recipe.schedule == "idc"
    # the cpu preset's IPC-1 and IPC-10 choices (docs/presets.md):
    # multi-formation up to IPC 10 on 28x28 only, lr_img scaled with IPC
    one, ten, fifty, tiny = (preset_config("cpu", d, "idc", i) for d, i in (
        ("fashion-mnist", 1), ("fashion-mnist", 10), ("fashion-mnist", 50), ("digits", 10)))
    assert (one.factor, one.init, one.lr_img) == (2, "mix", 0.1)
    assert (ten.factor, ten.init, ten.lr_img) == (2, "mix", pytest.approx(0.3))
    assert (one.iterations, ten.iterations, fifty.iterations) == (100, 200, 100)  # "fashion-mnist-idc-ipc10-iterations"
    assert (fifty.factor, fifty.init, fifty.lr_img) == (1, "modes", pytest.approx(0.5))   # "-ipc50-modes"
    assert (tiny.factor, tiny.init, tiny.lr_img) == (1, "real", pytest.approx(0.1))


def test_ipc_larger_than_a_class_raises(digits, tmp_path):
    with pytest.raises(ValueError, match="largest IPC"):
        distill_run(digits, "idc", 1000, tmp_path / "x", progress=False)


def test_runs_resume_and_skip_finished_work(digits, tmp_path):
    out = tmp_path / "dm"
    syn = distill_run(digits, "dm", 2, out, progress=False, iterations=3, width=16)
    again = distill_run(digits, "dm", 2, out, progress=False, iterations=3, width=16)
    assert torch.equal(syn.images, again.images)
    with pytest.raises(ValueError, match="already holds a different run"):
        distill_run(digits, "dm", 2, out, progress=False, iterations=4, width=16)
    df = evaluate_run(out, digits, seeds=[0], epochs=5, progress=False)
    assert set(df.metric) >= {"test_acc", "seconds"} and (df.method == "dm").all()
    assert df.protocol.iloc[0].startswith("convnet/ep5-")
    again = evaluate_run(out, digits, seeds=[0], epochs=5, progress=False)  # nothing left to train
    assert len(again) == len(df)
    table = pd.read_csv(out / "results.csv")
    assert (table.metric == "test_acc").sum() == 1 and "preset" in table.columns
