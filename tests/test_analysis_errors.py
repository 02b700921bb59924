"""dasm.analysis.errors: the network of a set, and error rate by difficulty against the controls."""

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import torch

from dasm.analysis.errors import train_on_set
from dasm.train import Recipe, predict

matplotlib.use("Agg")


def _per_class(data, k):
    """The first ``k`` training images of every class, as a stand-in synthetic set."""
    ix = torch.cat([data.class_index[c][:k] for c in range(data.num_classes)])
    return data.x_train[ix], data.y_train[ix]


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
    from dasm.analysis.errors import ERROR_COLUMNS, error_table

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
    from dasm.analysis.errors import error_table

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
    from dasm.analysis.errors import error_numbers, error_table

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
    from dasm.analysis.errors import error_table, plot_error_by_difficulty
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
    from dasm.analysis import errors

    calls = []
    real = errors.train_model
    monkeypatch.setattr(errors, "train_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, y = _per_class(digits, 1)
    recipe = Recipe(epochs=2, augment="none")
    first = errors.set_predictions(digits, x, y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 1 and first.shape == digits.y_train.shape and first.dtype == torch.long
    again = errors.set_predictions(digits, x, y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 1 and torch.equal(first, again)                 # the second call trains nothing
    errors.set_predictions(digits, x.flip(-1), y, recipe=recipe, cache_dir=tmp_path, width=8)
    assert len(calls) == 2                                                # another set's content trains again
    errors.set_predictions(digits, x, y, recipe=recipe, seed=1, cache_dir=tmp_path, width=8)
    assert len(calls) == 3 and len(list(tmp_path.glob("set-predictions-*.pt"))) == 3
