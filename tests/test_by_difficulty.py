"""Accuracy by difficulty: class-balanced deciles, known per-decile accuracies, the leave-one-out reference,
the paired bias contrast, and evaluations that keep their predictions so a diagnosis never retrains."""

import math

import pandas as pd
import pytest
import torch

from dasm.analysis.by_difficulty import (accuracy_by_bin, bias_contrast, by_difficulty_table, class_bins, difficulty,
                                         paired_summary, prediction_records)
from dasm.evaluate import load_predictions


def test_every_decile_holds_a_tenth_of_every_class():
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate([100, 57, 230])])
    bins = class_bins(torch.rand(len(y), generator=g), y)
    for c, n in enumerate([100, 57, 230]):
        counts = torch.bincount(bins[y == c], minlength=10)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n


def test_deciles_follow_the_score_within_each_class():
    y = torch.tensor([0] * 10 + [1] * 10)
    scores = torch.cat([torch.arange(10.0), -torch.arange(10.0)])   # class 1 ranks in reverse
    bins = class_bins(scores, y)
    assert bins[:10].tolist() == list(range(10)) and bins[10:].tolist() == list(range(9, -1, -1))


def test_accuracy_by_bin_on_a_hand_made_table():
    bins = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    correct = torch.tensor([True, True, True, False, False, True, False])
    t = accuracy_by_bin(correct, bins, n=3)
    assert t.value.tolist() == [75.0, 50.0, 0.0] and t.n.tolist() == [4, 2, 1]


def test_difficulty_is_the_mean_loss_of_the_references():
    y = torch.tensor([0, 1])
    a, b = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    ce = lambda z: torch.nn.functional.cross_entropy(z, y, reduction="none")   # noqa: E731
    assert torch.allclose(difficulty([a, b], y), (ce(a) + ce(b)) / 2)


def _record(method, seed, pred=None, logits=None, ipc=10):
    rec = {"method": method, "seed": seed, "ipc": ipc, "arch": "convnet"}
    if logits is not None:
        rec["logits"] = {"test": logits}
    else:
        rec["pred"] = {"test": pred}
    return rec


def test_table_grades_each_full_network_on_the_others_difficulty():
    # 20 test images of 2 classes; full network A finds the first half of each class easy, B the second half
    y = torch.tensor([0] * 10 + [1] * 10)
    easy_first = torch.linspace(-1, 1, 10)
    za = torch.zeros(20, 2)
    zb = torch.zeros(20, 2)
    for c in (0, 1):
        rows = slice(10 * c, 10 * c + 10)
        za[rows, c] = -5 * easy_first   # A: sure of the first images of each class
        zb[rows, c] = 5 * easy_first    # B: sure of the last ones
    za[:, 0] += 1e-3   # A gets every hard image wrong as class 0 ... keep argmax defined
    recs = [_record("full", 0, logits=za, ipc=6000), _record("full", 1, logits=zb, ipc=6000),
            _record("random", 0, pred=y.clone())]
    t = by_difficulty_table(recs, y, dataset="toy", n=2)
    full_a = t[(t.method == "full") & (t.seed == 0)].set_index("decile").value
    # A is graded on B's difficulty: B's easy half is A's hard half, where A is wrong on class 1
    assert full_a[0] < full_a[1]
    assert set(t.columns) == {"dataset", "method", "ipc", "seed", "arch", "decile", "metric", "value", "n"}
    assert (t[t.method == "random"].value == 100.0).all()


def test_table_needs_two_reference_networks():
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="at least two 'full'"):
        by_difficulty_table([_record("full", 0, logits=torch.eye(2))], y, dataset="toy")


def test_bias_contrast_pairs_by_seed():
    rows = []
    for seed, (hard_gap, easy_gap) in enumerate([(6.0, 1.0), (4.0, 1.0)]):
        for decile in range(10):
            base = 90.0 - 5 * decile
            gap = hard_gap if decile >= 7 else easy_gap if decile <= 2 else 0.0
            rows += [{"method": "idc", "ipc": 50, "seed": seed, "decile": decile, "value": base + gap, "n": 100},
                     {"method": "idc-starts", "ipc": 50, "seed": seed, "decile": decile, "value": base, "n": 100}]
    c = bias_contrast(pd.DataFrame(rows), "idc", "idc-starts")
    assert c.contrast.tolist() == pytest.approx([5.0, 3.0]) and c.hard_gain.tolist() == pytest.approx([6.0, 4.0])
    s = paired_summary(c.contrast)
    assert s["mean"] == pytest.approx(4.0) and s["count"] == 2 and s["ci_low"] < 4.0 < s["ci_high"]
    assert math.isnan(paired_summary(pd.Series([1.0]))["p"])


def test_evaluation_keeps_predictions_and_a_second_diagnosis_trains_nothing(digits, tmp_path, monkeypatch):
    import dasm.evaluate as evaluate
    from dasm.runs import distill_run, evaluate_run, full_data_run
    from dasm.train import Recipe

    distill_run(digits, "random", 5, tmp_path / "random", progress=False)
    first = evaluate_run(tmp_path / "random", digits, seeds=[0], epochs=3, progress=False)
    full_data_run(digits, tmp_path / "full", seeds=[0, 1], recipe=Recipe(epochs=2), progress=False)
    calls = []
    monkeypatch.setattr(evaluate, "train_model", lambda *a, **k: calls.append(1) or [])
    again = evaluate_run(tmp_path / "random", digits, seeds=[0], epochs=3, progress=False)
    full_data_run(digits, tmp_path / "full", seeds=[0, 1], recipe=Recipe(epochs=2), progress=False)
    records = prediction_records([tmp_path])
    table = by_difficulty_table(records, digits.y_test, dataset="digits")
    assert not calls and len(again) == len(first)
    assert sorted({(r["method"], r["seed"]) for r in records}) == [("full", 0), ("full", 1), ("random", 0)]
    kept = load_predictions(next((tmp_path / "random" / "predictions").iterdir()))
    assert kept["environment"]["threads"] == str(torch.get_num_threads())   # what a bit-for-bit rerun needs
    # the per-decile accuracies add back up to the row's test accuracy
    rows = table[table.method == "random"]
    overall = (rows.value * rows.n).sum() / rows.n.sum()
    assert overall == pytest.approx(first[first.metric == "test_acc"].value.iloc[0], abs=1e-4)


def test_a_row_without_its_predictions_is_trained_again_without_a_second_row(digits, tmp_path):
    from dasm.runs import distill_run, evaluate_run

    distill_run(digits, "random", 5, tmp_path / "random", progress=False)
    first = evaluate_run(tmp_path / "random", digits, seeds=[0], epochs=3, progress=False)
    for f in (tmp_path / "random" / "predictions").iterdir():
        f.unlink()
    again = evaluate_run(tmp_path / "random", digits, seeds=[0], epochs=3, progress=False)
    assert list((tmp_path / "random" / "predictions").iterdir()) and len(again) == len(first)


def test_the_bias_table_says_whether_each_contrast_differs_from_zero():
    from benchmarks.diagnosis import bias_table

    contrasts = pd.DataFrame({"ipc": [50] * 3 + [10] * 3, "seed": [0, 1, 2] * 2, "method": "idc",
                              "baseline": "idc-starts", "hard_gain": [3.0, 3.2, 2.9, 1.0, -1.0, 0.5],
                              "easy_gain": [0.0, 0.1, 0.0, 0.2, 0.1, -0.4], "contrast": [3.0, 3.1, 2.9, 0.8, -1.1, 0.9]})
    t = bias_table(contrasts).set_index("IPC")
    assert t.loc[50, "differs from zero"] == "yes" and t.loc[10, "differs from zero"] == "no"
    assert t.loc[50, "comparison"] == "idc − idc-starts" and t.loc[50, "seeds"] == 3
    assert t.loc[50, "hard minus easy"] == "3.00 ± 0.10"


def test_the_bias_reading_gives_each_ipc_one_line_with_its_interval_or_none():
    from benchmarks.diagnosis import bias_reading

    contrasts = pd.DataFrame({"ipc": [50] * 3 + [10], "seed": [0, 1, 2, 0], "method": "idc",
                              "baseline": "idc-starts", "hard_gain": 0.0, "easy_gain": 0.0,
                              "contrast": [3.0, 3.1, 2.9, -0.8]})
    ten, fifty = bias_reading(contrasts)
    assert ten.startswith("Accuracy by difficulty (test images), IPC 10") and ten.endswith(
        "(points), 1 seed, no interval: idc − idc-starts −0.80.")
    assert "idc − idc-starts +3.00 (3 seeds, 95% interval [+2.75, +3.25] excludes zero)" in fifty


def test_each_panel_says_how_many_seeds_its_lines_average():
    from dasm.analysis.by_difficulty import plot_by_difficulty
    rows = [dict(method=m, ipc=ipc, seed=s, decile=d, value=50.0 + d)
            for ipc, seeds in ((10, (0, 1, 2)), (50, (0,))) for m in ("full", "random", "idc")
            for s in seeds for d in range(10)]
    rows += [dict(method="dasm", ipc=50, seed=s, decile=d, value=60.0) for s in (0, 1) for d in range(10)]
    fig = plot_by_difficulty(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["IPC 10 (3 seeds)", "IPC 50 (1–2 seeds)"]
