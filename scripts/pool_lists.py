"""Write the lists the generalisation protocol of the bundled model reads, for ``fakelens preprocess --dataset list``.

    python scripts/pool_lists.py ../shared/data runs/

* ``face_pool.csv``: the shared face pool (``faces/`` rows of media.csv), REAL photographs with their
  identity as the leakage group; ``preprocess --val-fraction`` splits them by group. Training reads these.
* ``real_video_pool.csv``: the real talking-face videos of ``videos/real-extra/`` (one group per person), for
  self-blended training from video frames; ``preprocess --val-fraction`` splits them by person.
* ``dev_pool.csv``: every labelled deepfake-dataset medium (videos and frames of Celeb-DF v2, FF++, DFDC and
  the others: media.csv outside ``faces/``, ``videos/real-extra/`` and ``videos/generated/``, the pool that
  v1-v5 were measured on), all with ``split=test``. Its ``half`` column is the committed selection/report
  split of ``docs/results/dev_pool_halves.csv`` (see :func:`halves`): v6 and later choose on ``selection`` and
  report on ``report``. Training never touches these media.
* ``generated_pool.csv``: ``videos/generated/`` (talking heads and their driving clips), for information.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections import defaultdict
from pathlib import Path

COLUMNS = ["path", "label", "group", "dataset", "method", "split"]
#: Folders of media.csv that are pools of their own, not part of the face-swap dev pool.
OWN_POOLS = {"faces/": "face", "videos/real-extra/": "real_video", "videos/generated/": "generated"}
HALVES_FILE = Path(__file__).resolve().parents[1] / "docs" / "results" / "dev_pool_halves.csv"
#: The seed of the committed halves (never to be re-drawn after a model was chosen on them).
HALVES_SEED = 2028


def pool_of(path: str) -> str:
    return next((pool for prefix, pool in OWN_POOLS.items() if path.startswith(prefix)), "dev")


def _write(path: Path, rows: list[dict], columns=COLUMNS) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _order(key: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def halves(dev: list[dict], seed: int = HALVES_SEED) -> dict[str, str]:
    """Each leakage group of the dev pool -> ``selection`` or ``report``, balanced by dataset.

    A group goes with the dataset most of its media come from (FF++ {000,003} holds one DeeperForensics video
    too). Within each dataset, groups holding videos are dealt first, then image-only groups; each group, in a
    seeded hash order, joins the half that so far has fewer of that dataset's videos (then media) of the
    group's majority label, so both halves get videos, images, reals and fakes of every dataset that has them.
    """
    media = defaultdict(list)
    for r in dev:
        media[r["group"]].append(r)
    dataset_of = {}
    for group, rows in media.items():
        counts = defaultdict(int)
        for r in rows:
            counts[r["dataset"]] += 1
        dataset_of[group] = max(sorted(counts), key=counts.get)
    side: dict[str, str] = {}
    for dataset in sorted(set(dataset_of.values())):
        groups = [g for g in dataset_of if dataset_of[g] == dataset]
        load = {h: defaultdict(int) for h in ("selection", "report")}
        has_video = lambda g: any(r["kind"] == "video" for r in media[g])  # noqa: E731
        ordered = sorted(groups, key=lambda g: (not has_video(g), _order(g, seed)))
        for group in ordered:
            rows = media[group]
            labels = [r["label"] for r in rows]
            label = max(sorted(set(labels)), key=labels.count)
            kind = "video" if has_video(group) else "image"
            key = (kind, label)
            # The half with less of this kind and label; ties by seeded hash, so neither half is always first.
            tie = int(_order(group + "#side", seed), 16) % 2
            a, b = ("selection", "report") if tie == 0 else ("report", "selection")
            half = a if (load[a][key], load[a]["media"]) <= (load[b][key], load[b]["media"]) else b
            side[group] = half
            load[half][key] += 1
            load[half]["media"] += len(rows)
    return side


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (holding media.csv and faces/)")
    parser.add_argument("out", type=Path, help="folder for the lists")
    parser.add_argument(
        "--write-halves", action="store_true",
        help=f"draw the selection/report halves anew into {HALVES_FILE.name} (done once, before v6's training)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    with open(args.data / "media.csv", newline="") as fh:
        media = [r for r in csv.DictReader(fh) if r["label"] in ("real", "fake")]
    pools = defaultdict(list)
    for r in media:
        pools[pool_of(r["path"])].append(r)
    faces, dev = pools["face"], pools["dev"]
    if not faces or not dev:
        parser.error(f"{args.data}/media.csv lists no face pool or no dev pool rows")
    if args.write_halves:
        side = halves(dev)
        _write(HALVES_FILE, [{"group": g, "half": side[g]} for g in sorted(side)], ["group", "half"])
        print(f"halves drawn (seed {HALVES_SEED}) -> {HALVES_FILE}")
    with open(HALVES_FILE, newline="") as fh:
        side = {r["group"]: r["half"] for r in csv.DictReader(fh)}
    unknown = sorted({r["group"] for r in dev} - set(side))
    if unknown:
        parser.error(f"{len(unknown)} dev-pool groups are in no half of {HALVES_FILE} (e.g. {unknown[0]}); the pool changed")
    args.out.mkdir(parents=True, exist_ok=True)
    pick = lambda r, split: {**{k: r[k] for k in COLUMNS[:5]}, "split": split}  # noqa: E731
    _write(args.out / "face_pool.csv", [pick(r, "") for r in faces])
    _write(args.out / "real_video_pool.csv", [pick(r, "") for r in pools["real_video"]])
    _write(args.out / "generated_pool.csv", [pick(r, "test") for r in pools["generated"]])
    _write(args.out / "dev_pool.csv", [{**pick(r, "test"), "half": side[r["group"]]} for r in dev], COLUMNS + ["half"])
    for half in ("selection", "report"):
        groups = sorted({g for g, h in side.items() if h == half})
        (args.out / f"{half}_groups.txt").write_text("".join(g + "\n" for g in groups))
        rows = [r for r in dev if side[r["group"]] == half]
        videos = [r for r in rows if r["kind"] == "video"]
        print(f"{half} half: {len(groups)} groups, {len(rows)} media ({len(videos)} videos: "
              f"{sum(r['label'] == 'real' for r in videos)} real, {sum(r['label'] == 'fake' for r in videos)} fake)")  # fmt: skip
    print(f"face pool: {len(faces)} photos, {len({r['group'] for r in faces})} groups -> {args.out / 'face_pool.csv'}")
    real_video = pools["real_video"]
    print(f"real videos: {len(real_video)} clips, {len({r['group'] for r in real_video})} people -> {args.out / 'real_video_pool.csv'}")
    print(f"dev pool: {len(dev)} labelled media ({sum(r['kind'] == 'video' for r in dev)} videos) -> {args.out / 'dev_pool.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
