"""dasm.analysis.redundancy: balanced halves, the A/B/A+B table, gradient similarity, coverage, the plot."""

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from dasm.analysis.redundancy import coverage, gradient_similarity, plot_redundancy, redundancy_table, split_halves
from dasm.nets import get_network
from dasm.synthetic import SyntheticSet


def real_set(digits, ipc: int) -> SyntheticSet:
    idx = torch.cat([ix[:ipc] for ix in digits.class_index])
    return SyntheticSet(digits.x_train[idx].clone(), digits.y_train[idx].clone(), 10,
                        meta={"dataset": "digits", "method": "random"})


def test_split_halves_disjoint_balanced_and_seeded(digits):
    syn = real_set(digits, 4)
    a, b = split_halves(syn, seed=0)
    assert len(set(a.tolist()) & set(b.tolist())) == 0
    assert sorted(a.tolist() + b.tolist()) == list(range(40))
    for half in (a, b):
        assert torch.bincount(syn.labels[half], minlength=10).tolist() == [2] * 10
    a2, b2 = split_halves(syn, seed=0)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    assert any(not torch.equal(a, split_halves(syn, seed=s)[0]) for s in range(1, 5))
    odd_a, odd_b = split_halves(real_set(digits, 3))
    assert len(odd_a) == len(odd_b) == 10 and not set(odd_a.tolist()) & set(odd_b.tolist())
    with pytest.raises(ValueError, match="too few"):
        split_halves(real_set(digits, 1))


def test_redundancy_table_rows_and_plot(digits):
    syn = real_set(digits, 4)
    t = redundancy_table(digits, syn, epochs=3, seeds=[0, 1], width=16)
    acc = t[t["metric"] == "test_acc"]
    assert sorted(zip(acc["subset"], acc["seed"])) == sorted((s, k) for s in ("A", "B", "A+B") for k in (0, 1))
    assert acc["value"].between(0, 100).all()
    assert acc.set_index("subset")["ipc"].to_dict() == {"A": 2, "B": 2, "A+B": 4}
    gain = t[t["metric"] == "gain"]
    assert len(gain) == 2
    for seed in (0, 1):
        v = acc[acc["seed"] == seed].set_index("subset")["value"]
        assert gain[gain["seed"] == seed]["value"].item() == pytest.approx(v["A+B"] - (v["A"] + v["B"]) / 2)
    fig = plot_redundancy(t)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "test accuracy (%)"
    assert [x.get_text().split("\n")[0] for x in ax.get_xticklabels()] == ["A", "B", "A+B"]
    assert len(ax.patches) == 3 and "random" in ax.get_title()


def test_gradient_similarity_of_identical_groups_is_one(digits):
    torch.manual_seed(0)
    net = get_network("convnet", 1, 10, (8, 8), width=16)
    one = torch.cat([ix[:1] for ix in digits.class_index])
    idx = one.repeat_interleave(2)  # every class holds the same image twice
    twins = SyntheticSet(digits.x_train[idx].clone(), digits.y_train[idx].clone(), 10)
    t = gradient_similarity(net, digits, twins, groups=2)
    assert list(t.columns) == ["group_a", "group_b", "cosine"] and len(t) == 1
    assert t["cosine"].item() == pytest.approx(1.0, abs=1e-6)
    different = gradient_similarity(net, digits, real_set(digits, 6), groups=3, seed=1)
    assert len(different) == 3 and set(zip(different["group_a"], different["group_b"])) == {(0, 1), (0, 2), (1, 2)}
    assert different["cosine"].between(-1, 1 - 1e-4).all()
    assert net.training  # mode restored


def test_coverage_is_zero_when_the_set_holds_the_real_samples():
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(60, 5, generator=g), torch.arange(3).repeat(20)
    t = coverage(feats, feats, labels, labels)
    assert t["label"].tolist() == [0, 1, 2]
    assert (t["mean_nn_dist"] == 0).all() and (t["p90_nn_dist"] == 0).all()
    sub = coverage(feats, feats[:6], labels, labels[:6])  # two synthetic samples per class
    assert (sub["mean_nn_dist"] > 0).all() and (sub["p90_nn_dist"] >= sub["mean_nn_dist"]).all()
    shifted = coverage(torch.zeros(4, 2), torch.tensor([[3.0, 4.0], [6.0, 8.0]]), torch.zeros(4), torch.zeros(2))
    assert shifted["mean_nn_dist"].item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="same network"):
        coverage(feats, torch.zeros(3, 4), labels, labels[:3])


def test_redundancy_over_seeds_with_the_random_control_cached_and_the_whole_set_reused(digits, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from dasm.analysis import redundancy
    from dasm.analysis.redundancy import plot_redundancy_sets, redundancy_numbers, redundancy_sets_table

    calls = []
    real = redundancy.train_and_test
    monkeypatch.setattr(redundancy, "train_and_test", lambda *a, **k: calls.append(k.get("seed")) or real(*a, **k))
    sets = {("random", s): real_set(digits, 2) for s in (0, 1, 2)}
    sets.update({("idc", s): real_set(digits, 4) for s in (0, 1, 2)})
    whole = {("idc", s): 50.0 + s for s in (0, 1, 2)}          # the evaluation's accuracy: A+B is not trained
    t = redundancy_sets_table(digits, sets, epochs=2, whole=whole, cache_dir=tmp_path, width=8)
    assert len(calls) == 3 * 3 + 3 * 2 and sorted(set(calls)) == [0, 1, 2]
    assert set(t["set"]) == {"random", "idc"} and sorted(t["seed"].unique()) == [0, 1, 2]
    idc = t[(t["set"] == "idc") & (t["subset"] == "A+B") & (t["metric"] == "test_acc")]
    assert idc.set_index("seed")["value"].to_dict() == {0: 50.0, 1: 51.0, 2: 52.0}
    numbers = redundancy_numbers(t)
    gain = numbers[(numbers["metric"] == "gain") & (numbers["baseline"] == "")].set_index(["set", "seed"])["value"]
    gap = numbers[(numbers["metric"] == "gain") & (numbers["baseline"] == "random")].set_index(["set", "seed"])["value"]
    for s in (0, 1, 2):
        v = t[(t["set"] == "idc") & (t["seed"] == s) & (t["metric"] == "test_acc")].set_index("subset")["value"]
        assert gain[("idc", s)] == pytest.approx(v["A+B"] - (v["A"] + v["B"]) / 2)
        assert gap[("idc", s)] == pytest.approx(gain[("idc", s)] - gain[("random", s)])
        assert gap[("random", s)] == 0.0
    again = redundancy_sets_table(digits, sets, epochs=2, whole=whole, cache_dir=tmp_path, width=8)
    assert len(calls) == 15                                   # the second call trains nothing
    pd.testing.assert_frame_equal(again, t)
    fig = plot_redundancy_sets(t)
    left = fig.axes[0]
    assert [x.get_text() for x in left.get_xticklabels()] == ["random", "idc"]          # the control first
    assert any(ln.get_label() == "random's gain" for ln in left.get_lines())
    assert "3 seeds" in left.get_title()
    plt.close("all")
