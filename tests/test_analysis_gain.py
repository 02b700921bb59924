"""dasm.analysis.gain: pairing by seed against hand-made results, the summary, the plot."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dasm.analysis.gain import gain_summary, gain_table, plot_gain  # noqa: E402


def results() -> pd.DataFrame:
    """IDC at IPC 10 (seeds 0-2) and 50 (seeds 0-1); DASM at 10 (seeds 0-2) and 50 (seeds 0-2);
    a full-data row, an MLP row, a train_acc row and one duplicated row."""
    rows = []
    acc = {("idc", 10): [80, 81, 82], ("idc", 50): [85, 86],
           ("dasm", 10): [79, 81, 83], ("dasm", 50): [87, 89, 99]}
    for (method, ipc), values in acc.items():
        for seed, v in enumerate(values):
            rows.append(dict(dataset="fmnist", method=method, ipc=ipc, seed=seed, arch="convnet",
                             metric="test_acc", value=v))
            rows.append(dict(dataset="fmnist", method=method, ipc=ipc, seed=seed, arch="mlp",
                             metric="test_acc", value=10.0))
            rows.append(dict(dataset="fmnist", method=method, ipc=ipc, seed=seed, arch="convnet",
                             metric="train_acc", value=100.0))
    rows.append(dict(dataset="fmnist", method="full", ipc=6000, seed=0, arch="convnet", metric="test_acc", value=91))
    rows.append(rows[0])
    return pd.DataFrame(rows)


def test_gains_pair_each_method_with_the_baseline_on_the_same_seed():
    t = gain_table(results())
    # DASM seed 2 at IPC 50 has no IDC partner, the full and the baseline rows are not compared.
    assert set(zip(t.method, t.ipc, t.seed)) == {("dasm", 10, 0), ("dasm", 10, 1), ("dasm", 10, 2),
                                                 ("dasm", 50, 0), ("dasm", 50, 1)}
    assert t.set_index(["ipc", "seed"]).gain.to_dict() == {(10, 0): -1, (10, 1): 0, (10, 2): 1,
                                                           (50, 0): 2, (50, 1): 3}
    assert (t.value - t.baseline_value == t.gain).all() and (t.baseline == "idc").all()
    s = gain_summary(t).set_index("ipc")
    assert s.loc[10, "mean"] == 0 and s.loc[10, "std"] == pytest.approx(1.0) and s.loc[10, "count"] == 3
    assert s.loc[50, "mean"] == 2.5 and s.loc[50, "count"] == 2


def test_gain_reads_the_chosen_arch_and_baseline_and_explains_a_missing_one():
    mlp = gain_table(results(), arch="mlp")
    assert (mlp.gain == 0).all()
    reverse = gain_table(results(), baseline="dasm")
    assert set(reverse.method) == {"idc"} and sorted(reverse.gain) == [-3, -2, -1, 0, 1]
    with pytest.raises(ValueError, match="no 'dc' rows"):
        gain_table(results(), baseline="dc")
    with pytest.raises(ValueError, match="lacks columns"):
        gain_table(results().drop(columns="seed"))


def test_plot_draws_the_table_with_a_baseline_line_and_refuses_an_empty_one():
    t = gain_table(results())
    fig = plot_gain(t)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["10", "50"]
    assert {"idc", "dasm"} <= set(ax.get_legend_handles_labels()[1])
    assert len(ax.patches) == 2   # one bar per (method, IPC)
    with pytest.raises(ValueError, match="empty"):
        plot_gain(t.iloc[:0])
