"""dasm.analysis.alignment: per-sample gradients against autograd, self-alignment, deciles, summary, figure."""

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from dasm.analysis.alignment import (alignment_summary, difficulty_deciles, gradient_alignment,
                                     per_sample_gradients, plot_alignment, set_gradient)
from dasm.analysis.style import method_color
from dasm.matching import matched_parameters
from dasm.nets import get_network

matplotlib.use("Agg")


def _net(seed: int = 0):
    torch.manual_seed(seed)
    return get_network("convnet", 1, 10, 8, width=16)


@pytest.fixture(scope="module")
def small(digits):
    """A 200-sample stratified subset of digits, as a Dataset of its own."""
    ix = torch.cat([digits.class_index[c][:20] for c in range(10)]).sort().values
    return replace(digits, x_train=digits.x_train[ix], y_train=digits.y_train[ix], class_index=[])


def test_per_sample_gradients_average_to_the_gradient_of_the_mean_loss(digits):
    net = _net()
    x, y = digits.normalize(digits.x_train[:64]), digits.y_train[:64]
    names = matched_parameters(net, "all")
    g = per_sample_gradients(net, x, y, batch_size=24)  # uneven chunks on purpose
    sizes = [p.numel() for n, p in net.named_parameters() if n in names]
    assert g.shape == (64, sum(sizes))
    params = dict(net.named_parameters())
    direct = torch.autograd.grad(F.cross_entropy(net(x), y), [params[n] for n in names])
    direct = torch.cat([d.reshape(-1) for d in direct])
    assert torch.allclose(g.mean(0), direct, atol=1e-5)
    assert torch.allclose(set_gradient(net, x, y, batch_size=20), direct, atol=1e-5)
    # one row is that sample's own gradient
    one = torch.autograd.grad(F.cross_entropy(net(x[5:6]), y[5:6]), [params[n] for n in names])
    assert torch.allclose(g[5], torch.cat([d.reshape(-1) for d in one]), atol=1e-5)
    # a chosen parameter subset, in the given order
    sub = per_sample_gradients(net, x[:4], y[:4], names=["classifier.weight"])
    assert sub.shape == (4, params["classifier.weight"].numel())
    with pytest.raises(ValueError, match="no parameters"):
        per_sample_gradients(net, x, y, names=["nope"])


def test_a_sample_is_perfectly_aligned_with_itself(small):
    net = _net(1)
    scores = torch.rand(len(small.y_train), generator=torch.Generator().manual_seed(0))
    i = 37
    table = gradient_alignment(net, small, small.x_train[i:i + 1], small.y_train[i:i + 1], scores,
                               per_class=False)
    assert len(table) == len(small.y_train)
    assert table.loc[table["index"] == i, "cosine"].item() == pytest.approx(1.0, abs=1e-5)
    assert (table["cosine"].abs() <= 1 + 1e-6).all()
    assert (table.drop(index=i)["cosine"] < 1 - 1e-4).all()
    # per class: one real image per class as the synthetic set; each is aligned with itself
    first = torch.stack([small.class_index[c][0] for c in range(10)])
    per = gradient_alignment(net, small, small.x_train[first], small.y_train[first], scores)
    assert np.allclose(per.set_index("index").loc[first.numpy(), "cosine"], 1.0, atol=1e-5)


def test_deciles_cover_every_bin_and_the_summary_has_one_row_each(small):
    net = _net(2)
    scores = torch.randn(len(small.y_train), generator=torch.Generator().manual_seed(1))
    syn = torch.cat([small.class_index[c][:2] for c in range(10)])
    table = gradient_alignment(net, small, small.x_train[syn], small.y_train[syn], scores)
    assert list(table.columns) == ["index", "label", "score", "decile", "cosine"]
    assert sorted(table["decile"].unique()) == list(range(10))
    # 0 = easiest: deciles rise with the score
    assert table.groupby("decile")["score"].max().is_monotonic_increasing
    assert (table.groupby("decile").size() == 20).all()
    summary = alignment_summary(table)
    assert len(summary) == 10 and summary["decile"].tolist() == list(range(10))
    assert summary["count"].sum() == len(table)
    assert np.allclose(summary["mean"], table.groupby("decile")["cosine"].mean().to_numpy())
    assert (summary["ci_lo"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_hi"]).all()


def test_tied_scores_still_fill_equal_deciles():
    scores = torch.tensor([0.0] * 70 + [1.0] * 20 + [2.0] * 10)
    dec = difficulty_deciles(scores)
    assert np.bincount(dec).tolist() == [10] * 10
    assert dec[:70].max() <= 6 and dec[90:].min() == 9


def test_subsampling_is_seeded_and_capped(digits):
    net = _net(3)
    scores = torch.arange(len(digits.y_train), dtype=torch.float32)
    syn = torch.cat([digits.class_index[c][:1] for c in range(10)])
    a = gradient_alignment(net, digits, digits.x_train[syn], digits.y_train[syn], scores,
                           max_per_class=15, seed=4, set_name="idc")
    b = gradient_alignment(net, digits, digits.x_train[syn], digits.y_train[syn], scores,
                           max_per_class=15, seed=4)
    assert len(a) == 150 and (a.groupby("label").size() == 15).all()
    assert a["index"].tolist() == b["index"].tolist()
    assert (a["set"] == "idc").all() and "set" not in b.columns
    # global deciles: the score of a sample decides its decile whatever was subsampled
    assert (a["decile"] == a["index"] * 10 // len(digits.y_train)).all()


def test_missing_synthetic_classes_warn_and_bad_input_is_refused(small):
    net = _net(4)
    scores = torch.rand(len(small.y_train))
    keep = torch.cat([small.class_index[c][:1] for c in (0, 1, 2)])
    with pytest.warns(UserWarning, match="no images of classes"):
        t = gradient_alignment(net, small, small.x_train[keep], small.y_train[keep], scores)
    assert set(t["label"]) == {0, 1, 2}
    with pytest.raises(ValueError, match="training samples"):
        gradient_alignment(net, small, small.x_train[keep], small.y_train[keep], scores[:5])


def test_plot_has_labels_and_one_line_per_set(small):
    net = _net(5)
    scores = torch.rand(len(small.y_train), generator=torch.Generator().manual_seed(2))
    tables = []
    for name, k in (("idc", 1), ("dasm", 3)):
        syn = torch.cat([small.class_index[c][:k] for c in range(10)])
        tables.append(gradient_alignment(net, small, small.x_train[syn], small.y_train[syn], scores,
                                         set_name=name))
    both = pd.concat(tables, ignore_index=True)
    summary = alignment_summary(both)
    assert len(summary) == 20 and set(summary["set"]) == {"idc", "dasm"}
    fig = plot_alignment(both)
    assert isinstance(fig, Figure)
    (ax,) = fig.get_axes()
    assert ax.get_xlabel() == "difficulty decile (0 = easiest)"
    assert ax.get_ylabel() == "cosine(synthetic gradient, sample gradient)"
    lines = ax.get_lines()
    assert len(lines) == 2
    colors = {ln.get_label().split()[0]: to_hex(ln.get_color()) for ln in lines}
    assert colors == {"idc": method_color("idc"), "dasm": method_color("dasm")}
    assert len(ax.collections) == 2  # a 95% band per set
    single = plot_alignment(tables[0].drop(columns="set"))
    assert len(single.get_axes()[0].get_lines()) == 1
    matplotlib.pyplot.close("all")


def test_alignment_table_has_the_controls_and_the_full_data_as_reference(small):
    from dasm.analysis.alignment import alignment_table

    net = _net(6)
    scores = torch.rand(len(small.y_train), generator=torch.Generator().manual_seed(3))
    sets = {name: (small.x_train[ix], small.y_train[ix]) for name, ix in
            (("random", torch.cat([small.class_index[c][:2] for c in range(10)])),
             ("idc-starts", torch.cat([small.class_index[c][2:4] for c in range(10)])),
             ("idc", torch.cat([small.class_index[c][4:5] for c in range(10)])))}
    table = alignment_table(net, small, sets, scores, seed=2)
    assert list(table.columns) == ["set", "seed", "index", "label", "score", "decile", "cosine"]
    assert set(table["set"]) == {"random", "idc-starts", "idc", "full"} and (table["seed"] == 2).all()
    assert (table.groupby("set").size() == len(small.y_train)).all()
    # full: the class gradient of all real data of the class, i.e. the whole class given as the set
    whole = gradient_alignment(net, small, small.x_train, small.y_train, scores)
    full = table[table["set"] == "full"].set_index("index")
    assert np.allclose(full.loc[whole["index"], "cosine"], whole["cosine"], atol=1e-6)
    # each set's rows are what gradient_alignment gives for that set alone (the real gradients are shared)
    alone = gradient_alignment(net, small, *sets["idc"], scores)
    mine = table[table["set"] == "idc"].set_index("index")
    assert np.allclose(mine.loc[alone["index"], "cosine"], alone["cosine"], atol=1e-6)
    assert (mine.loc[alone["index"], "decile"].to_numpy() == alone["decile"].to_numpy()).all()


def test_alignment_numbers_and_curves_pair_over_seeds(small):
    from dasm.analysis.alignment import alignment_curves, alignment_numbers

    rows = []
    for seed in (0, 1):
        for name, easy, hard in (("full", 0.9, 0.8), ("random", 0.8, 0.75), ("idc", 0.8, 0.5 + 0.1 * seed)):
            for decile in range(10):
                rows.append({"set": name, "seed": seed, "index": decile, "label": 0, "score": float(decile),
                             "decile": decile, "cosine": easy if decile < 5 else hard})
    table = pd.DataFrame(rows)
    numbers = alignment_numbers(table)

    def value(name, seed, metric, baseline=""):
        sel = numbers[(numbers["set"] == name) & (numbers["seed"] == seed) & (numbers["metric"] == metric)
                      & (numbers["baseline"] == baseline)]
        return sel["value"].item()
    assert value("idc", 0, "drop") == pytest.approx(0.3) and value("idc", 1, "drop") == pytest.approx(0.2)
    assert value("idc", 0, "drop_gap", "full") == pytest.approx(0.2)
    assert value("idc", 1, "drop_gap", "random") == pytest.approx(0.15)
    assert value("idc", 1, "drop_gap", "full") == pytest.approx(0.1)
    assert value("full", 0, "drop_gap", "full") == 0.0
    curves = alignment_curves(table)
    idc9 = curves[(curves["set"] == "idc") & (curves["decile"] == 9)].iloc[0]
    assert idc9["seeds"] == 2 and idc9["mean"] == pytest.approx(0.55)
    assert idc9["hi"] - idc9["lo"] == pytest.approx(2 * np.std([0.5, 0.6], ddof=1))   # ± std over seeds
    fig = plot_alignment(table)
    (ax,) = fig.get_axes()
    styles = {ln.get_label().split()[0]: ln.get_linestyle() for ln in ax.get_lines()}
    assert styles == {"full": ":", "random": "--", "idc": "-"}
    assert "std over 2 seeds" in ax.get_title()
    matplotlib.pyplot.close("all")


def test_the_small_summary_redraws_the_figure_and_gives_the_same_numbers(tmp_path):
    from dasm.analysis.alignment import alignment_curves, alignment_numbers

    g = torch.Generator().manual_seed(0)
    rows = [{"set": name, "seed": seed, "index": i, "label": i % 3, "score": float(i), "decile": i % 10,
             "cosine": float(torch.rand(1, generator=g))} for name in ("full", "random", "idc") for seed in (0, 1)
            for i in range(60)]
    table = pd.DataFrame(rows)
    path = tmp_path / "summary.csv"
    alignment_summary(table).to_csv(path, index=False)
    summary = pd.read_csv(path)
    assert len(summary) == 3 * 2 * 10                                  # per set, seed and decile
    pd.testing.assert_frame_equal(alignment_numbers(summary), alignment_numbers(table))
    pd.testing.assert_frame_equal(alignment_curves(summary), alignment_curves(table))
    assert len(plot_alignment(summary).get_axes()[0].get_lines()) == 3
    matplotlib.pyplot.close("all")
