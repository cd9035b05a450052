"""Where should the training gate's thresholds lie? Measured, not guessed.

Trains the models of many offline-designer specs (each designed from an empty memory, so each
explores: indicators, labels and architectures as the designer draws them) on the bundled data
and on seeded synthetic markets (``core/synthetic.py``: ``noise``, a driftless random walk;
``drift``, the same with an upward drift; ``signal``, a planted learnable trend), walk-forward as
a research trains them (``RESEARCH_WALK_FORWARD_FOLDS``, default 4), and prints the distribution
of the figures the training gate can read, split by how many classes the labels have:

* ``test_accuracy``, ``test_loss``, ``loss_decrease``: the seeds' absolute figures;
* ``accuracy_lift`` (accuracy above always predicting the training labels' majority class) and
  ``loss_ratio`` (test loss over the entropy of the training labels' class frequencies): the
  figures relative to the labels' own baseline.

Then the share of models each check passes, at the seeds' thresholds and at candidate ones. On
``noise`` and ``drift`` no model can predict anything (a random walk's future is independent of
its past), so what passes there passes by luck or by construction; what a check passes on noise
and fails on signal (or the reverse) is what the check measures.

Usage::

    .venv/bin/python benchmarks/training_gate_calibration.py [--specs 24] [--seed 0]
        [--kinds bundled,noise,drift,signal] [--jobs 1] [--json]

The last line of stdout is one JSON object (per kind and number of classes: the quantiles and
pass rates); ``--json`` prints only that line.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from research_assets.core import pipeline
from research_assets.core.data import list_datasets
from research_assets.core.designer import DesignRequest, OfflineDesigner
from research_assets.core.memory import ResearchMemory
from research_assets.core.synthetic import write_market_data

FIGURES = ("test_accuracy", "test_loss", "loss_decrease", "accuracy_lift", "loss_ratio")
# (label, figure, comparison, threshold): the checks whose pass rates are printed.
CHECKS = (
    ("seed: accuracy >= 0.45", "test_accuracy", ">=", 0.45),
    ("seed: loss <= 0.8", "test_loss", "<=", 0.8),
    ("seed: loss decrease >= 0.2", "loss_decrease", ">=", 0.2),
    ("lift >= 0", "accuracy_lift", ">=", 0.0),
    ("lift > 0", "accuracy_lift", ">", 0.0),
    ("lift >= 0.005", "accuracy_lift", ">=", 0.005),
    ("lift >= 0.01", "accuracy_lift", ">=", 0.01),
    ("lift >= 0.02", "accuracy_lift", ">=", 0.02),
    ("loss ratio <= 1", "loss_ratio", "<=", 1.0),
    ("loss ratio <= 1.02", "loss_ratio", "<=", 1.02),
    ("loss ratio <= 1.05", "loss_ratio", "<=", 1.05),
)
# Gates made of several checks, each check as in CHECKS.
COMBINED = (
    ("seeds' three", ("seed: accuracy >= 0.45", "seed: loss <= 0.8", "seed: loss decrease >= 0.2")),
    ("lift>=0, ratio<=1", ("lift >= 0", "loss ratio <= 1")),
    ("lift>0, ratio<=1", ("lift > 0", "loss ratio <= 1")),
    ("lift>=0.005, ratio<=1", ("lift >= 0.005", "loss ratio <= 1")),
    ("lift>=0.01, ratio<=1", ("lift >= 0.01", "loss ratio <= 1")),
    ("lift>=0, ratio<=1.02", ("lift >= 0", "loss ratio <= 1.02")),
    ("lift>=0, ratio<=1.05", ("lift >= 0", "loss ratio <= 1.05")),
)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def _passes(value: float, comparison: str, threshold: float) -> bool:
    if not math.isfinite(value):
        return False
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold}[comparison]


def _classes(balance: dict[str, float]) -> int:
    """Classes with at least 2% of the training labels (forward-return labels with threshold 0
    have a handful of exactly-zero returns as 'flat': that is still two classes)."""
    return sum(1 for share in balance.values() if share >= 0.02)


def _train_one(job: tuple[str, str | None, int]) -> dict:
    kind, data_dir, seed = job
    warnings.filterwarnings("ignore")
    directory = Path(data_dir) if data_dir else None
    datasets = list_datasets(directory)
    design = OfflineDesigner().design(DesignRequest(f"cal{seed}", seed), ResearchMemory(), datasets)
    spec = design.spec
    start = time.perf_counter()
    try:
        model = pipeline.train(spec, directory)
    except Exception as e:  # a spec the data cannot train (too few samples...) is left out
        return {"kind": kind, "seed": seed, "spec": spec.name, "error": str(e)[:200]}
    metrics = model.metrics
    row = {f: float(metrics.as_dict()[f]) for f in FIGURES}
    labels = spec.training.labels
    return {
        "kind": kind,
        "seed": seed,
        "spec": spec.name,
        "labels": labels.source,
        "classes": _classes(metrics.class_balance),
        "datasets": len(spec.dataset_keys()),
        "test_samples": metrics.test_samples,
        "train_s": time.perf_counter() - start,
        **row,
    }


def _summary(rows: list[dict]) -> dict:
    out: dict = {"models": len(rows)}
    for f in FIGURES:
        values = np.array([r[f] for r in rows if math.isfinite(r[f])])
        out[f] = (
            {f"p{round(q * 100)}": round(float(np.quantile(values, q)), 4) for q in QUANTILES}
            if len(values)
            else {}
        )
    passes = {label: [_passes(r[f], c, t) for r in rows] for label, f, c, t in CHECKS}
    rates = {label: round(float(np.mean(p)), 3) for label, p in passes.items()}
    for label, parts in COMBINED:
        rates[label] = round(
            float(np.mean([all(passes[p][i] for p in parts) for i in range(len(rows))])), 3
        )
    out["pass_rate"] = rates
    # a model that predicts one class only has the majority's accuracy: a lift of 0 (rounding
    # aside); is it rejected?
    collapsed = [r for r in rows if abs(r["accuracy_lift"]) < 1e-9]
    out["one_class_models"] = len(collapsed)
    out["one_class_loss_ratio_le_1"] = sum(1 for r in collapsed if r["loss_ratio"] <= 1.0)
    return out


def _print_table(title: str, groups: dict[str, list[dict]]) -> None:
    names = list(groups)
    print(f"\n== {title}")
    print(f"{'':30}" + "".join(f"{n:>22}" for n in names))
    print(f"{'models':30}" + "".join(f"{len(groups[n]):>22}" for n in names))
    summaries = {n: _summary(groups[n]) for n in names}
    for f in FIGURES:
        cells = []
        for n in names:
            q = summaries[n][f]
            cells.append(f"{q['p10']:.3f}/{q['p50']:.3f}/{q['p90']:.3f}" if q else "-")
        print(f"{f + ' p10/p50/p90':30}" + "".join(f"{c:>22}" for c in cells))
    print(
        f"{'one-class models (<= 1 ratio)':30}"
        + "".join(
            f"{summaries[n]['one_class_models']:>18} ({summaries[n]['one_class_loss_ratio_le_1']})"
            for n in names
        )
    )
    labels = [c[0] for c in CHECKS] + [c[0] for c in COMBINED]
    for label in labels:
        print(
            f"{'pass ' + label:30}"
            + "".join(f"{summaries[n]['pass_rate'][label]:>22.0%}" for n in names)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=24, help="designs per kind of data")
    parser.add_argument("--seed", type=int, default=0, help="first design seed; data seed")
    parser.add_argument("--kinds", default="bundled,noise,drift,signal")
    parser.add_argument("--jobs", type=int, default=1, help="trainings in parallel")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--rows", type=Path, help="also write each model's figures here (JSONL)")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    quiet = args.json
    os.environ.setdefault("RESEARCH_WALK_FORWARD_FOLDS", "4")

    with tempfile.TemporaryDirectory(prefix="gate-calibration-") as tmp:
        jobs = []
        for kind in kinds:
            data_dir = None
            if kind != "bundled":
                data_dir = str(Path(tmp) / kind)
                write_market_data(data_dir, kind, seed=args.seed)
            jobs += [(kind, data_dir, args.seed + i) for i in range(args.specs)]
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            rows = list(pool.map(_train_one, jobs))
        wall = time.perf_counter() - start

    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in rows))
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    if not quiet:
        print(
            f"{len(rows)} models trained in {wall:.0f} s ({len(failed)} specs left out: "
            "could not be trained on their data)",
            file=sys.stderr if quiet else sys.stdout,
        )
        for r in failed:
            print(f"  left out: {r['kind']} {r['spec']}: {r['error']}")
        by_kind = {k: [r for r in rows if r["kind"] == k] for k in kinds}
        _print_table("by kind of data (all labels)", by_kind)
        for classes in (2, 3):
            groups = {
                k: [r for r in rows if r["kind"] == k and r["classes"] == classes] for k in kinds
            }
            _print_table(f"{classes}-class labels", {k: v for k, v in groups.items() if v})

    result: dict = {
        "folds": int(os.environ["RESEARCH_WALK_FORWARD_FOLDS"]),
        "specs_per_kind": args.specs,
        "seed": args.seed,
        "wall_s": round(wall, 1),
    }
    for kind in kinds:
        result[kind] = {"all": _summary([r for r in rows if r["kind"] == kind])}
        for classes in (2, 3):
            group = [r for r in rows if r["kind"] == kind and r["classes"] == classes]
            if group:
                result[kind][f"{classes}_classes"] = _summary(group)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
