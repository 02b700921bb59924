"""dasm.analysis.histograms: the long table, counts that never drop a sample, the right/wrong split, figures."""

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from dasm.analysis.histograms import (TABLE_COLUMNS, difficulty_table, histogram_counts,
                                      plot_difficulty_histogram, train_on_set)
from dasm.difficulty import forgetting_scores, loss_scores, reference_network
from dasm.train import Recipe, predict

matplotlib.use("Agg")


def _per_class(data, k):
    """The first ``k`` training images of every class, as a stand-in synthetic set."""
    ix = torch.cat([data.class_index[c][:k] for c in range(data.num_classes)])
    return data.x_train[ix], data.y_train[ix]


@pytest.fixture(scope="module")
def setup(digits):
    ref = reference_network(digits, width=16, recipe=Recipe(epochs=1, augment="none"))
    scores = loss_scores(ref, digits.x_train, digits.y_train, digits.normalize)
    sets = {"idc": train_on_set(digits, *_per_class(digits, 1), epochs=10, width=16),  # with DSA
            "dasm": train_on_set(digits, *_per_class(digits, 3), width=16, recipe=Recipe(epochs=15, augment="none"))}
    never = torch.zeros(len(scores), dtype=torch.bool)
    never[::50] = True  # 29 samples flagged as never learned by the scoring run
    table = difficulty_table(digits, scores, never, score_name="loss", sets=sets)
    return scores, never, sets, table


def test_table_is_long_with_one_row_per_sample_and_set(digits, setup):
    scores, never, sets, table = setup
    n = len(digits.y_train)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == n * len(sets)
    for name in sets:
        rows = table[table["set"] == name]
        assert rows["index"].tolist() == list(range(n))
        assert np.allclose(rows["score"], scores.double().numpy())  # never-learned scores are kept, not NaN
        assert rows["never_learned"].sum() == int(never.sum())
        assert (rows["label"].to_numpy() == digits.y_train.numpy()).all()
    assert not table["score"].isna().any()
    assert set(table["score_name"]) == {"loss"}


def test_counts_add_up_and_match_a_direct_accuracy_check(digits, setup):
    scores, never, sets, table = setup
    counts = histogram_counts(table, bins=12)
    n = len(digits.y_train)
    for name, net in sets.items():
        c = counts[counts["set"] == name]
        assert c["count"].sum() == n  # the never-learned bin included: nothing dropped
        direct = int((predict(net, digits.x_train, digits.normalize).argmax(1) == digits.y_train).sum())
        assert c.loc[c["correct"] == True, "count"].sum() == direct  # noqa: E712
        assert c.loc[c["correct"] == False, "count"].sum() == n - direct  # noqa: E712
        nl = c[c["never_learned_bin"]]
        assert len(nl) == 2 and nl["count"].sum() == int(never.sum())
        assert nl["bin_lo"].isna().all() and nl["bin_hi"].isna().all()
        assert (nl["bin_label"] == "never learned").all()
    regular = counts[~counts["never_learned_bin"]]
    # 12 shared bins, for every set and both outcomes
    assert regular.groupby(["set", "correct"]).size().eq(12).all()
    edges = regular[["bin", "bin_lo", "bin_hi"]].drop_duplicates()
    assert len(edges) == 12 and (edges["bin_hi"] > edges["bin_lo"]).all()
    learned = scores[~never]
    assert edges["bin_lo"].min() == pytest.approx(float(learned.min()))
    assert edges["bin_hi"].max() == pytest.approx(float(learned.max()))


def test_forgetting_scores_with_never_learned_samples_get_their_own_bin(digits, setup):
    scores, never = forgetting_scores(digits, epochs=1, width=16)
    assert never.any()  # one epoch leaves some samples never learned
    sets = {"idc": setup[2]["idc"]}
    table = difficulty_table(digits, scores, never, score_name="forgetting", sets=sets)
    counts = histogram_counts(table, bins=20)
    assert counts["count"].sum() == len(digits.y_train)
    assert counts.loc[counts["never_learned_bin"], "count"].sum() == int(never.sum())
    regular = counts[~counts["never_learned_bin"]]
    # integer counts get unit bins centred on the integers
    assert np.allclose(regular["bin_hi"] - regular["bin_lo"], 1.0)
    assert regular["bin_lo"].min() == pytest.approx(float(scores[~never].min()) - 0.5)


def test_infinite_scores_are_flagged_and_bad_input_is_refused(digits):
    n = len(digits.y_train)
    s = torch.rand(n)
    s[:5] = float("inf")
    table = difficulty_table(digits, s)
    assert table["never_learned"].sum() == 5 and (table["set"] == "all").all()
    assert table["correct"].isna().all()
    counts = histogram_counts(table, bins=5)
    assert counts["count"].sum() == n and counts.loc[counts["never_learned_bin"], "count"].item() == 5
    with pytest.raises(ValueError, match="training samples"):
        difficulty_table(digits, s[:10])
    s[7] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        difficulty_table(digits, s)
    with pytest.raises(ValueError, match="columns"):
        histogram_counts(pd.DataFrame({"score": [1.0]}))


def test_plot_panels_with_labels_and_a_bar_per_bin(setup):
    table = setup[3]
    fig = plot_difficulty_histogram(table, bins=10)
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xlabel() == "loss under a full-data network"
        # stacked right + wrong bars for each of the 10 bins, plus the never-learned bar(s)
        assert len(ax.patches) >= 2 * 10 + 1
        legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
        assert "never learned: 29" in legend and "right" in legend and "wrong" in legend
    assert axes[0].get_ylabel() == "real training samples"
    only = plot_difficulty_histogram(table, bins=10, sets=["dasm"])
    assert len(only.get_axes()) == 1 and "dasm" in only.get_axes()[0].get_title()
    assert axes[0].get_yscale() == "linear"
    logged = plot_difficulty_histogram(table, bins=10, log=True).get_axes()
    assert all(ax.get_yscale() == "log" for ax in logged)
    assert plot_difficulty_histogram(table, bins=10, overlay=True, log=True).get_axes()[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="not in the table"):
        plot_difficulty_histogram(table, sets=["dm"])
    matplotlib.pyplot.close("all")


def test_overlay_draws_one_step_line_per_set(setup):
    fig = plot_difficulty_histogram(setup[3], bins=10, overlay=True)
    (ax,) = fig.get_axes()
    lines = ax.get_lines()
    assert len(lines) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("idc") for lbl in labels) and any(lbl.startswith("dasm") for lbl in labels)
    assert ax.get_xlabel() == "loss under a full-data network"
    assert "real training samples" in ax.get_ylabel()
    matplotlib.pyplot.close("all")


def test_overlay_gives_run_named_sets_their_method_colour_and_never_one_colour_twice(setup):
    from dasm.analysis.style import method_color

    table = setup[3].replace({"set": {"idc": "idc-ipc50", "dasm": "dasm-ipc50"}})
    (ax,) = plot_difficulty_histogram(table, bins=10, overlay=True).get_axes()
    colors = {line.get_label().split(" ")[0]: matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}
    assert colors == {"idc-ipc50": method_color("idc"), "dasm-ipc50": method_color("dasm")}
    twins = setup[3].replace({"set": {"idc": "idc-ipc10", "dasm": "idc-ipc50"}})
    (ax,) = plot_difficulty_histogram(twins, bins=10, overlay=True).get_axes()
    assert len({matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}) == 2
    matplotlib.pyplot.close("all")


def test_figure_redraws_from_a_saved_csv(tmp_path, setup):
    table = setup[3]
    path = tmp_path / "hist.csv"
    table.to_csv(path, index=False)
    again = pd.read_csv(path)
    pd.testing.assert_frame_equal(histogram_counts(again, 8).drop(columns="bin_label"),
                                  histogram_counts(table, 8).drop(columns="bin_label"), check_dtype=False)
    assert isinstance(plot_difficulty_histogram(again, bins=8), Figure)
    matplotlib.pyplot.close("all")


def test_train_on_set_returns_a_trained_net_in_eval_mode(digits):
    x, y = _per_class(digits, 2)
    net = train_on_set(digits, x, y, epochs=30, seed=1, width=16, recipe=Recipe(epochs=30, augment="none"))
    assert not net.training
    acc = (predict(net, x, digits.normalize).argmax(1) == y).float().mean().item()
    assert acc > 0.8  # it fits its own 20 images
    with pytest.raises(ValueError, match="expects"):
        train_on_set(digits, torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), epochs=1)


# ---------------------------------------------------------------------------------------
# Error by difficulty against the controls
# ---------------------------------------------------------------------------------------

def _hand_made():
    """8 images of 2 classes, scores rising with the index inside each class, and hand-made predictions."""
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0, 4.0])
    right = y.clone()
    wrong_hard = y.clone()
    wrong_hard[[2, 3, 6, 7]] = 1 - y[[2, 3, 6, 7]]          # wrong on the harder half of every class
    wrong_one = y.clone()
    wrong_one[0] = 1                                        # wrong on one easy image
    return y, scores, {("random", 0): wrong_one, ("idc", 0): wrong_hard, ("full", 0): right}


def test_error_table_counts_and_error_rates_per_class_quantile_bin():
    from dasm.analysis.histograms import ERROR_COLUMNS, error_table

    y, scores, preds = _hand_made()
    table = error_table(y, scores, preds, bins=2)
    assert list(table.columns) == list(ERROR_COLUMNS)
    assert set(table["set"]) == {"random", "idc", "full"}                 # the controls are rows of the table
    assert (table["binning"] == "quantile").all() and not table["never_learned_bin"].any()
    idc = table[table["set"] == "idc"].set_index("bin")
    assert idc["n"].tolist() == [4, 4]                                    # half of every class in each bin
    assert idc["wrong"].tolist() == [0, 4] and idc["error"].tolist() == [0.0, 100.0]
    rnd = table[table["set"] == "random"].set_index("bin")
    assert rnd["wrong"].tolist() == [1, 0] and rnd["error"].tolist() == [25.0, 0.0]
    assert table[table["set"] == "full"]["wrong"].sum() == 0
    # bin 0 holds the easier half of each class: class 1's easy scores (1, 2) are above class 0's hard ones
    assert idc.loc[0, "bin_lo"] == pytest.approx(0.1) and idc.loc[0, "bin_hi"] == pytest.approx(2.0)
    # a full-data network is binned by its own scale when given (leave one out): reversed scores swap its bins
    own = error_table(y, scores, preds, bins=2, own_scores={("idc", 0): -scores})
    assert own[own["set"] == "idc"]["wrong"].tolist() == [4, 0]


def test_integer_scores_get_unit_bins_and_never_learned_its_own_bin():
    from dasm.analysis.histograms import error_table

    y, _, preds = _hand_made()
    forget = torch.tensor([0, 0, 1, 2, 0, 1, 1, 0])
    never = torch.tensor([False, False, False, False, False, False, False, True])
    table = error_table(y, forget, preds, never_learned=never, score_name="forgetting", bins=10)
    idc = table[table["set"] == "idc"].set_index("bin")
    assert (table["binning"] == "count").all()
    assert idc["bin_label"].tolist() == ["0", "1", "2", "never learned"]
    assert idc["n"].tolist() == [3, 3, 1, 1] and idc["wrong"].tolist() == [0, 2, 1, 1]
    assert idc.loc[3, "never_learned_bin"] and np.isnan(idc.loc[3, "bin_lo"])
    with pytest.raises(ValueError, match="training images"):
        error_table(y, forget, {("idc", 0): preds[("idc", 0)][:5]})


def test_error_numbers_pair_each_set_with_random_on_the_same_seed():
    from dasm.analysis.histograms import error_numbers, error_table

    y, scores, preds = _hand_made()
    preds[("random", 1)] = y.clone()                 # seed 1: random is right everywhere
    preds[("idc", 1)] = preds[("idc", 0)]
    numbers = error_numbers(error_table(y, scores, preds, bins=2))
    assert list(numbers.columns) == ["figure", "set", "seed", "metric", "baseline", "value"]

    def value(name, seed, metric):
        row = numbers[(numbers["set"] == name) & (numbers["seed"] == seed) & (numbers["metric"] == metric)]
        return row["value"].item()
    # 2 quantile bins: easy = bin 0, hard = bin 1
    assert value("idc", 0, "easy_error") == 0.0 and value("idc", 0, "hard_error") == 100.0
    assert value("idc", 0, "hard_gap") == 100.0 and value("idc", 0, "easy_gap") == -25.0
    assert value("idc", 0, "contrast") == 125.0 and value("idc", 1, "contrast") == 100.0
    assert value("random", 0, "contrast") == 0.0
    assert value("full", 0, "easy_gap") == -25.0 and value("full", 0, "hard_gap") == 0.0
    del preds[("random", 1)]                          # no random set on seed 1: nothing to pair with
    unpaired = error_numbers(error_table(y, scores, preds, bins=2))
    assert unpaired[(unpaired["seed"] == 1) & (unpaired["metric"] == "contrast")]["value"].isna().all()
    assert set(numbers.loc[numbers["metric"] == "contrast", "baseline"]) == {"random"}


def test_error_plot_draws_every_set_with_its_controls_from_the_saved_table(tmp_path):
    from dasm.analysis.histograms import error_table, plot_error_by_difficulty
    from dasm.analysis.style import method_color

    y, scores, preds = _hand_made()
    preds[("idc-starts", 0)] = preds[("random", 0)]
    path = tmp_path / "errors.csv"
    error_table(y, scores, preds, bins=2).to_csv(path, index=False)
    fig = plot_error_by_difficulty(pd.read_csv(path))
    counts, errors, gaps = fig.get_axes()
    assert counts.get_yscale() == "log" and len(counts.patches) == 2
    lines = {ln.get_label().split(" ")[0]: ln for ln in errors.get_lines()}
    assert set(lines) == {"full", "random", "idc-starts", "idc"}
    assert lines["random"].get_linestyle() == "--" and lines["full"].get_linestyle() == ":"
    assert matplotlib.colors.to_hex(lines["idc"].get_color()) == method_color("idc")
    assert lines["idc"].get_ydata().tolist() == [0.0, 100.0]
    gap = {ln.get_label(): ln for ln in gaps.get_lines()}
    assert "random" in gap and gap["random"].get_ydata()[0] == 0.0     # the baseline as the zero line
    idc_gap = [ln for ln in gaps.get_lines() if matplotlib.colors.to_hex(ln.get_color()) == method_color("idc")]
    assert idc_gap[0].get_ydata().tolist() == [-25.0, 100.0]
    with pytest.raises(ValueError, match="columns"):
        plot_error_by_difficulty(pd.DataFrame({"set": ["idc"]}))
    matplotlib.pyplot.close("all")


def test_set_predictions_are_cached_by_the_sets_content(digits, tmp_path, monkeypatch):
    from dasm.analysis import histograms

    calls = []
    real = histograms.train_model
    monkeypatch.setattr(histograms, "train_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, y = _per_class(digits, 1)
    recipe = Recipe(epochs=2, augment="none")
    first = histograms.set_predictions(digits, x, y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 1 and first.shape == digits.y_train.shape and first.dtype == torch.long
    again = histograms.set_predictions(digits, x, y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 1 and torch.equal(first, again)                 # the second call trains nothing
    histograms.set_predictions(digits, x.flip(-1), y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 2                                                # another set's content trains again
    histograms.set_predictions(digits, x, y, recipe=recipe, seed=1, cache_dir=tmp_path, width=8)
    assert len(calls) == 3 and len(list(tmp_path.glob("set-predictions-*.pt"))) == 3
