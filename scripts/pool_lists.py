"""Write the two lists the generalisation protocol of the bundled model reads, for ``fakelens preprocess --dataset list``.

    python scripts/pool_lists.py ../shared/data runs/

* ``face_pool.csv``: the shared face pool (``faces/`` rows of media.csv), REAL photographs with their
  identity as the leakage group; ``preprocess --val-fraction`` splits them by group. Training reads only these.
* ``dev_pool.csv``: every labelled deepfake-dataset medium (videos and frames of Celeb-DF v2, FF++, DFDC and
  the others), all with ``split=test``: SBI-only training never touches them, so all of them measure it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

COLUMNS = ["path", "label", "group", "dataset", "method", "split"]


def _write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (holding media.csv and faces/)")
    parser.add_argument("out", type=Path, help="folder for face_pool.csv and dev_pool.csv")
    args = parser.parse_args(argv)
    with open(args.data / "media.csv", newline="") as fh:
        media = [r for r in csv.DictReader(fh) if r["label"] in ("real", "fake")]
    faces = [r for r in media if r["path"].startswith("faces/")]
    dev = [r for r in media if not r["path"].startswith("faces/")]
    if not faces or not dev:
        parser.error(f"{args.data}/media.csv lists no face pool or no dev pool rows")
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "face_pool.csv", [{**{k: r[k] for k in COLUMNS[:5]}, "split": ""} for r in faces])
    _write(args.out / "dev_pool.csv", [{**{k: r[k] for k in COLUMNS[:5]}, "split": "test"} for r in dev])
    print(f"face pool: {len(faces)} photos, {len({r['group'] for r in faces})} groups -> {args.out / 'face_pool.csv'}")
    print(f"dev pool: {len(dev)} labelled media ({sum(r['kind'] == 'video' for r in dev)} videos) -> {args.out / 'dev_pool.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
