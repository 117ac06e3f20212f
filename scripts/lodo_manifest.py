"""Leave-one-dataset-out manifest: train on FF++ fakes + the face pool (SBI), test on everything else.

    python scripts/lodo_manifest.py --faces runs/faces/manifest.csv --dev runs/devpool/manifest.csv \
        --train-dataset ffpp-c23 --out runs/lodo/manifest.csv

Rows of ``--train-dataset`` in the dev pool are split by leakage group into train (80%) and val (20%,
seeded hash), the face pool keeps its own train/val split, and every other dev-pool row becomes ``test``:
the checkpoint and the threshold are chosen on a val split that holds no test dataset.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="face-pool manifest (train/val)")
    parser.add_argument("--dev", type=Path, required=True, help="dev-pool manifest")
    parser.add_argument("--train-dataset", default="ffpp-c23", help="the dataset whose fakes train (default ffpp-c23)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of its groups in val (default 0.2)")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write")
    args = parser.parse_args(argv)

    from fakelens.data import MANIFEST_COLUMNS, assign_splits, write_manifest

    def rows_of(path: Path) -> list[dict]:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:  # absolute crop paths: the new manifest lives elsewhere
            row["crop_path"] = str((path.resolve().parent / row["crop_path"]).resolve())
        return rows

    faces, dev = rows_of(args.faces), rows_of(args.dev)
    train_groups = sorted({r["group"] for r in dev if r["dataset"] == args.train_dataset})
    if not train_groups:
        parser.error(f"no {args.train_dataset} rows in {args.dev}")
    side = assign_splits(train_groups, args.val_fraction, seed=0)
    for row in dev:
        row["split"] = side[row["group"]] if row["dataset"] == args.train_dataset else "test"
    rows = faces + dev
    write_manifest([{k: r.get(k, "") for k in MANIFEST_COLUMNS} for r in rows], args.out)
    counts = {}
    for r in rows:
        key = (r["split"], r["dataset"] if r["dataset"] in (args.train_dataset,) or r["split"] == "test" else "faces", r["label"])
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print(" ".join(key), counts[key])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
