"""Atomic saves and the load-or-compute cache every cached table and network goes through."""

import torch

from dasm.files import load_or_compute, save_atomic


def test_load_or_compute_saves_once_and_recomputes_what_is_not_valid(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(len(calls) * 3)

    path = tmp_path / "sub" / "x.pt"
    assert torch.equal(load_or_compute(path, compute), torch.arange(3)) and path.exists()
    assert torch.equal(load_or_compute(path, compute), torch.arange(3)) and len(calls) == 1
    assert torch.equal(load_or_compute(path, compute, valid=lambda t: len(t) == 6), torch.arange(6))
    assert torch.equal(torch.load(path), torch.arange(6)) and not list(tmp_path.rglob("*.tmp"))
    assert len(load_or_compute(None, compute)) == 9 and len(calls) == 3
    assert save_atomic({"a": 1}, tmp_path / "y.pt") == tmp_path / "y.pt"


def _append_rows(path: str, worker: int) -> None:
    import pandas as pd

    from dasm.evaluate import append_results

    for i in range(15):
        append_results(pd.DataFrame([{"worker": worker, "row": i}]), path)


def test_parallel_appends_to_one_table_lose_no_rows(tmp_path):
    import multiprocessing

    import pandas as pd

    path = str(tmp_path / "results.csv")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_rows, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    table = pd.read_csv(path)
    assert len(table) == 60 and sorted(table.groupby("worker").size()) == [15] * 4
