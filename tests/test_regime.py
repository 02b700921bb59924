"""The regime map: a base distiller's run is a prefix of a longer one (so one x3 run gives the x1 point),
and distance moved and diversity on tiny tensors with known answers."""

import pytest
import torch

from benchmarks import regime
from dasm.analysis.regime import diversity, moved, regime_points
from dasm.runs import distill_run
from dasm.synthetic import SyntheticSet


def test_a_shorter_run_is_the_prefix_of_a_longer_one(digits, tmp_path):
    short = distill_run(digits, "idc", 2, tmp_path / "short", iterations=4, progress=False)
    plain = distill_run(digits, "idc", 2, tmp_path / "plain", iterations=8, progress=False)
    recorded = []

    def record(n, where, at):   # evaluating a snapshot mid-run draws from torch's global generator
        recorded.append((n, where, at))
        torch.rand(1000)

    long = distill_run(digits, "idc", 2, tmp_path / "long", iterations=8, progress=False,
                       callback=regime.snapshot_saver(tmp_path / "long", digits, {4}, record))
    snap = SyntheticSet.load(tmp_path / "long" / "at-it4" / "synthetic.pt")
    assert torch.equal(snap.images, short.images.cpu())
    assert [(n, w) for n, w, _ in recorded] == [(4, tmp_path / "long" / "at-it4")]
    assert torch.equal(recorded[0][2].images, snap.images)
    assert not torch.equal(long.images, short.images)
    assert torch.equal(long.images, plain.images)   # recording the snapshot leaves the rest of the run as it was


def test_moved_is_the_mean_per_image_l2_distance():
    start = SyntheticSet(torch.zeros(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]), 2)
    end = SyntheticSet(torch.zeros(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]), 2)
    end.images[0] = 0.5          # |.|_2 = sqrt(4 * 0.25) = 1
    end.images[3, 0, 0, 0] = 3.0  # 3
    assert moved(end, start) == pytest.approx((1 + 3) / 4)
    with pytest.raises(ValueError, match="layout"):
        moved(SyntheticSet(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), 2), start)


def test_diversity_is_the_mean_within_class_pairwise_distance():
    feats = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # class 0: one pair at 5; class 1: pairs at 0, 1, 1 -> 2/3
    assert diversity(feats, labels) == pytest.approx((5 + 2 / 3) / 2)
    assert diversity(torch.zeros(4, 3), torch.tensor([0, 0, 1, 1])) == 0.0


def test_regime_points_pairs_each_point_with_its_starts():
    import pandas as pd

    rows = [{"method": "idc", "ipc": 50, "seed": 0, "init": "preset", "lr_img": 0.5, "iterations": it,
             "metric": m, "value": v} for it, vals in ((100, (87.0, 86.5, 1.2)), (300, (86.0, 86.5, 2.0)))
            for m, v in zip(("val_acc", "starts_val_acc", "moved"), vals)]
    pts = regime_points(pd.DataFrame(rows)).set_index("iterations")
    assert pts.gain.to_dict() == pytest.approx({100: 0.5, 300: -0.5})



def test_the_map_draws_each_point_once_with_its_strength_marker_and_its_seed_spread():
    """Seeds of a point are averaged into one marker (bars: their std); the marker's shape is the lr multiple,
    hollow for more iterations; one line per method joins its points in order of distance."""
    import pandas as pd

    def point(method, lr_mult, it_mult, seed, moved, gain):
        return [{"method": method, "ipc": 50, "seed": seed, "init": "preset", "lr_img": 0.5 * lr_mult,
                 "lr_mult": lr_mult, "iterations": 100 * it_mult, "it_mult": it_mult, "metric": m, "value": v}
                for m, v in (("val_acc", 87.0 + gain), ("starts_val_acc", 87.0), ("moved", moved))]

    table = pd.DataFrame(point("idc", 1, 1, 0, 0.9, 0.0) + point("idc", 1, 1, 1, 1.1, 0.4)
                         + point("idc", 4, 1, 0, 2.3, -1.2) + point("idc", 1, 3, 0, 1.4, 0.1)
                         + point("dasm", 0.25, 1, 0, 0.3, 0.2))
    ax = regime.plot_regime(table).axes[0]
    drawn = [(line.get_marker(), tuple(round(float(x), 6) for x in line.get_xdata()),
              line.get_markerfacecolor() in ("white", (1, 1, 1, 1)))
             for line in ax.lines if line.get_marker() in ("o", "^", "v", "s")]   # not the bars' caps
    assert sorted(drawn) == sorted([("o", (1.0,), False), ("^", (2.3,), False), ("o", (1.4,), True),
                                    ("v", (0.3,), False)])
    joined = [tuple(round(float(x), 6) for x in line.get_xdata()) for line in ax.lines if line.get_marker() in (None, "None", "")
              and len(line.get_xdata()) > 1]
    assert (1.0, 1.4, 2.3) in joined
    bars = [c for c in ax.collections if len(c.get_segments())]
    assert len(bars) == 2   # the two-seed point has an x and a y bar; single-seed points have none


def test_the_regime_reading_names_each_budgets_gain_and_whether_idc_saturates():
    import pandas as pd

    def rows(method, ipc, it, val, starts, lr_mult=1.0):
        return [{"method": method, "ipc": ipc, "seed": 0, "init": "preset", "lr_img": 0.5 * lr_mult, "lr_mult": lr_mult,
                 "iterations": it, "metric": m, "value": v} for m, v in (("val_acc", val), ("starts_val_acc", starts))]

    table = pd.DataFrame(rows("idc", 50, 100, 87.0, 86.75) + rows("idc", 50, 300, 86.5, 86.75)
                         + rows("idc", 10, 200, 83.0, 80.0) + rows("dasm", 50, 100, 88.0, 86.75)
                         + rows("idc", 50, 100, 50.0, 86.75, lr_mult=4.0))   # another lr: not in the sentence
    text = regime.regime_reading(table)
    assert "IDC at IPC 10 +3.00 after 200 iterations; at IPC 50 +0.25 after 100 iterations, −0.25 after 300" in text
    assert "DASM at IPC 50 +1.25 after 100 iterations" in text
    assert "IDC's matching saturates" in text and "(+0.25) while at IPC 10 it adds +3.00" in text
    assert "DASM's matching adds +1.25 to its starts: more than IDC's" in text
    steady = table.assign(value=table.value.where(~((table.ipc == 50) & (table.metric == "val_acc")
                                                    & (table.method == "idc")), 89.0))
    assert "no saturation of matching" in regime.regime_reading(steady)
    assert regime.regime_reading(table.iloc[:1]) == ""



def test_seeds_of_a_point_give_one_table_row_and_a_paired_reading():
    """Three seeds of the decisive points: one row each (mean ± std), the gain's interval over seeds, and DASM's
    gain minus IDC's paired by seed (here DASM gains 1 point more on every seed: the interval excludes zero)."""
    import pandas as pd

    def rows(method, ipc, it, seed, val, starts):
        return [{"method": method, "ipc": ipc, "seed": seed, "init": "preset", "lr_img": 0.5, "lr_mult": 1.0,
                 "iterations": it, "metric": m, "value": v} for m, v in (("val_acc", val), ("starts_val_acc", starts),
                                                                         ("moved", 1.0))]

    table = pd.DataFrame([r for seed, g in enumerate((0.0, 0.2, -0.2)) for r in
                          rows("idc", 50, 100, seed, 87.0 + g, 87.0) + rows("dasm", 50, 100, seed, 88.0 + g, 87.0)
                          + rows("idc", 10, 200, seed, 83.0 + g, 70.0)])
    shown = regime.regime_table(table).set_index(["method", "IPC"])
    assert shown.loc[("idc", 50), "seeds"] == 3 and shown.loc[("idc", 50), "val (%)"] == "87.00 ± 0.20"
    assert shown.loc[("dasm", 50), "gain"] == "+1.00 ± 0.20"
    text = regime.regime_reading(table)
    assert "IDC at IPC 10 +13.00 after 200 iterations (3 seeds, 95% interval [+12.50, +13.50] excludes zero)" in text
    assert "DASM's gain minus IDC's, paired by seed: +1.00" in text and text.endswith("excludes zero).")

def test_a_point_records_each_evaluated_budget_once(tmp_path, monkeypatch):
    """A point with a snapshot gets its rows at both budgets; run again, it trains and distills nothing."""
    import pandas as pd

    from dasm.data import load_dataset

    data = load_dataset("digits", val_fraction=0.2)
    monkeypatch.setattr(regime, "point_settings", lambda data, p, preset: (0.1, 2, {"lr_img": 0.1, "iterations": 4}))
    point, table = regime.Point("idc", 1, it=2, at=(1, 2)), tmp_path / "regime.csv"
    regime.run_point(data, point, 0, table, preset="cpu", runs=tmp_path / "runs", net=None)
    rows = pd.read_csv(table)
    assert sorted(rows.groupby("iterations").metric.apply(sorted).items()) == \
        [(n, ["moved", "starts_val_acc", "val_acc"]) for n in (2, 4)]
    monkeypatch.setattr(regime, "distill_run", lambda *a, **k: pytest.fail("a recorded point distilled again"))
    regime.run_point(data, point, 0, table, preset="cpu", runs=tmp_path / "runs", net=None)
    assert len(pd.read_csv(table)) == len(rows)


def test_the_movement_reading_orders_points_by_distance_and_says_what_falls():
    import pandas as pd

    def point(lr, it, moved, val, div):
        return [{"method": "idc", "ipc": 50, "seed": 0, "init": "preset", "lr_img": lr, "lr_mult": lr / 0.5,
                 "iterations": it, "metric": m, "value": v}
                for m, v in (("val_acc", val), ("starts_val_acc", 87.0), ("moved", moved), ("diversity", div),
                             ("starts_diversity", 16.0))]

    falling = pd.DataFrame(point(2.0, 100, 2.3, 85.8, 15.5) + point(0.5, 100, 0.9, 87.0, 15.9)
                           + point(0.5, 300, 1.4, 87.1, 15.7))
    text = regime.movement_reading(falling)
    assert "ordered by how far the images moved (0.90, 1.40, 2.30)" in text
    assert "gain over the starts +0.00, +0.10, −1.20" in text and "15.90, 15.70, 15.50 (starts 16.00)" in text
    assert "the diversity falls and the accuracy drops" in text
    steady = pd.DataFrame(point(0.5, 100, 0.9, 87.0, 15.9) + point(2.0, 100, 2.3, 87.2, 15.95))
    assert "does not fall steadily and the accuracy does not drop" in regime.movement_reading(steady)
    assert regime.movement_reading(falling[falling.lr_img == 2.0]) == ""   # one point: nothing to order
    another_seed = pd.DataFrame(point(0.5, 100, 5.0, 80.0, 10.0)).assign(seed=1)   # only one point has seed 1
    assert regime.movement_reading(pd.concat([falling, another_seed])) == text   # points compared on shared seeds
    assert "IDC at IPC 50 (seed 0)" in text


def test_every_decisive_point_is_a_budget_the_seed_0_map_evaluates():
    """The points repeated over seeds pair with seed 0's map: each is evaluated by one of its POINTS."""
    evaluated = {(p.method, p.ipc, p.lr, p.init, m) for p in regime.POINTS for m in p.evaluated_at}
    assert regime.DECISIVE and all((p.method, p.ipc, p.lr, p.init, p.it) in evaluated for p in regime.DECISIVE)
