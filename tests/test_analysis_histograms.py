"""dasm.analysis.histograms: the long table, counts that never drop a sample, the right/wrong split, figures."""

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from dasm.analysis.errors import train_on_set
from dasm.analysis.histograms import TABLE_COLUMNS, difficulty_table, histogram_counts, plot_difficulty_histogram
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
