"""Fingerprints of every method's seeded digits set: a refactor that changes no behaviour changes none.

Each method distills (or selects) a small digits set with the cpu preset and seed 0 (distillers
for a few iterations, DASM in two segments) and prints the SHA-1 of its stored images and labels.
Run it before and after a change, with the same thread count, and compare:

    OMP_NUM_THREADS=1 python benchmarks/fingerprint.py > before.json
    ... change the code ...
    OMP_NUM_THREADS=1 python benchmarks/fingerprint.py | diff before.json -

The same seed under another thread count may differ in the last bits (floating-point sums in
another order), so compare only runs made with one thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

from dasm.config import applicable
from dasm.data import load_dataset
from dasm.methods import method as method_spec
from dasm.methods import method_names
from dasm.runs import distill_run

# A few iterations per distiller (static pruning included), two short segments for DASM: enough to move
# every image. Each method takes the settings that concern it (dasm.config.applicable).
SMALL = {"iterations": 4, "feature_epochs": 2}
SEGMENTED = {"iterations": 6, "segments": 2, "probe_epochs": 5}


def fingerprint(method: str, ipc: int, out: Path) -> str:
    """SHA-1 of the images and labels of ``method``'s seeded digits set (``ipc`` per class)."""
    data = load_dataset("digits")
    over = applicable(method, SEGMENTED if method_spec(method).segments else SMALL)
    syn = distill_run(data, method, ipc, out / method, seed=0, progress=False, **over)
    h = hashlib.sha1(syn.images.detach().cpu().numpy().tobytes())
    h.update(syn.labels.cpu().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ipc", type=int, default=4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prints = {m: fingerprint(m, args.ipc, Path(tmp)) for m in method_names()}
    print(json.dumps(prints, indent=1))


if __name__ == "__main__":
    main()
