"""One training manifest from several (e.g. the face pool's photos and frames of real videos), for ``fakelens train``.

    python scripts/mix_manifest.py runs/mix/manifest.csv runs/faces/manifest.csv runs/realvid/manifest.csv:2

``MANIFEST:K`` lists that manifest's *train* rows K times (default 1): training draws REAL rows uniformly, so this
is how a small pool (frames of ~100 real videos beside ~7,900 photos) gets a larger share of the draws.
Validation rows are listed once, whatever K.

Rows are copied as they are, with ``crop_path`` rewritten relative to the new manifest's folder, so crops stay
where preprocessing wrote them. Leakage groups must not collide across the inputs (each pool names its groups
by source: ``lfw:``, ``utkface:``, person names ...); a group found in two inputs is an error, since it would
put one person on both sides of a split that each input drew alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fakelens.data.manifest import MANIFEST_COLUMNS, write_manifest  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the mixed manifest to write")
    parser.add_argument("inputs", nargs="+", help="manifests to mix, each as PATH or PATH:K (train rows K times)")
    args = parser.parse_args(argv)
    out_dir = args.out.resolve().parent
    rows, owner = [], {}
    for spec in args.inputs:
        name, _, times = spec.rpartition(":") if spec.rpartition(":")[2].isdigit() else (spec, "", "1")
        manifest, repeat = Path(name), int(times)
        if repeat < 1:
            parser.error(f"{spec}: the repeat must be at least 1")
        with open(manifest, newline="") as fh:
            raw = list(csv.DictReader(fh))
        for row in raw:
            group = row.get("group", "")
            if owner.setdefault(group, manifest) != manifest:
                parser.error(f"group {group!r} is in both {owner[group]} and {manifest}")
            crop = (manifest.resolve().parent / row["crop_path"]).resolve()
            copy = {**{k: row.get(k, "") for k in MANIFEST_COLUMNS}, "crop_path": os.path.relpath(crop, out_dir)}
            rows.extend([copy] * (repeat if row.get("split") == "train" else 1))
        print(f"{manifest}: {len(raw)} crops ({sum(r['split'] == 'train' for r in raw)} train, listed x{repeat})")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(rows, args.out)
    print(f"-> {args.out}: {len(rows)} crops")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
