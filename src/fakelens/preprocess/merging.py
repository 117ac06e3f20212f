"""``--merge``: join preprocessing folders (e.g. the shards of several machines) into one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from fakelens import atomic
from fakelens.preprocess.config import PreprocessError, PreprocessSummary, summarise
from fakelens.preprocess.folder import FolderLock, clean_tmp_files, crop_dir, part_path, read_part, write_outputs

log = logging.getLogger(__name__)


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)  # same filesystem: no copy, no extra space
        except OSError:
            shutil.copy2(src, tmp)


def merge(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, progress: bool = True) -> PreprocessSummary:
    """Join preprocessing folders (e.g. shards) into ``out_dir``: crops linked or copied, one manifest.

    Each video appears once: when several folders hold it, the first ``ok`` part wins (else the
    first). All inputs must have the same settings. ``out_dir`` may be one of the inputs.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    out_dir = Path(os.path.abspath(out_dir))
    folders = []
    for folder in inputs:
        folder = Path(os.path.abspath(folder))
        if not (folder / "config.json").is_file() or not (folder / "parts").is_dir():
            raise PreprocessError(f"{folder} is not a preprocessing output folder (no config.json or parts/)")
        if folder not in folders:
            folders.append(folder)
    if not folders:
        raise PreprocessError("nothing to merge")
    configs = [json.loads((f / "config.json").read_text(encoding="utf-8")) for f in folders]
    for folder, config in zip(folders[1:], configs[1:]):
        if config != configs[0]:
            raise PreprocessError(f"{folder} was made with other settings than {folders[0]}; cannot merge")
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    with FolderLock(out_dir, "all"):
        clean_tmp_files(out_dir)
        if (out_dir / "config.json").is_file() and out_dir not in folders:
            if json.loads((out_dir / "config.json").read_text(encoding="utf-8")) != configs[0]:
                raise PreprocessError(f"{out_dir} holds crops made with other settings; use another --out folder")
        atomic.write_bytes(out_dir / "config.json", json.dumps(configs[0], indent=2))
        chosen: dict[str, tuple[Path, dict]] = {}
        duplicates = 0
        for folder in ([out_dir] if out_dir not in folders else []) + folders:
            for path in sorted((folder / "parts").glob("*.json")):
                part = read_part(path)
                if part is None:
                    continue
                relpath = part["record"]["relpath"]
                if relpath in chosen:
                    duplicates += 1
                    if chosen[relpath][1]["result"]["status"] == "ok" or part["result"]["status"] != "ok":
                        continue
                chosen[relpath] = (folder, part)
        if duplicates:
            log.info("merge: %d videos appeared in more than one folder; each is kept once", duplicates)
        for relpath, (folder, part) in tqdm(sorted(chosen.items()), desc="merging", unit="video", disable=not progress):
            if folder == out_dir:
                continue
            shutil.rmtree(crop_dir(out_dir, relpath), ignore_errors=True)  # debris of an interrupted merge
            for row in part["rows"]:
                _link_or_copy(folder / row["crop_path"], out_dir / row["crop_path"])
            atomic.write_bytes(part_path(out_dir, relpath), json.dumps(part, separators=(",", ":")))
        parts = [part for _, part in chosen.values()]
        manifest, crop_counts = write_outputs(out_dir, parts)
        summary = summarise(
            out_dir, manifest, parts, crop_counts, [], len(parts), time.perf_counter() - start, None, 1, configs[0].get("settings", {})
        )
        atomic.write_bytes(out_dir / "summary.json", json.dumps(summary.to_dict(), indent=2))
    return summary
