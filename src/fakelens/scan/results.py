"""The RESULTS folder: a part per finished input (by content hash), the merged tables, the summary and the plot.

Layout::

    RESULTS/config.json              the settings the results were made with (a rerun must match them)
    RESULTS/parts/<sha256>.faces.parquet   the input's faces (written first)
    RESULTS/parts/<sha256>.parquet         its result row: written last, atomically, it marks the input done
    RESULTS/results.parquet          one row per input (RESULT_COLUMNS), rebuilt from the parts at the end
    RESULTS/faces.parquet            one row per scored face (FACE_COLUMNS)
    RESULTS/summary.json             counts per verdict (and per ground-truth label), errors, throughput
    RESULTS/scores.png               the score distribution (when matplotlib is installed)

Every file goes through :mod:`fakelens.atomic`, so a killed scan leaves whole parts or none; the same
content under two paths is scanned once and reported under both.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fakelens import atomic
from fakelens.errors import InvalidArgument
from fakelens.scan.sources import HashedInput
from fakelens.scan.stages import ERROR

log = logging.getLogger(__name__)

PART_VERSION = "1"
#: results.parquet: ``label`` is the verdict (REAL/FAKE/NO_FACE/ERROR, as in ``fakelens predict --json``),
#: ``true_label`` the label a CSV list gave, ``threshold`` the one the verdict used.
RESULT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("true_label", pa.string()),
        ("label", pa.string()),
        ("score", pa.float64()),
        ("threshold", pa.float64()),
        ("frames", pa.int32()),
        ("faces", pa.int32()),
        ("error", pa.string()),
        ("model", pa.string()),
        ("seconds", pa.float64()),
    ]
)
FACE_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("frame_index", pa.int32()),
        ("timestamp", pa.float64()),
        ("track", pa.int32()),
        ("box", pa.list_(pa.float64(), 4)),
        ("detection_prob", pa.float64()),
        ("score", pa.float64()),
    ]
)
RESULT_COLUMNS = tuple(RESULT_SCHEMA.names)
FACE_COLUMNS = tuple(FACE_SCHEMA.names)
#: Columns of a result part (what belongs to the content; path, size and true_label come from the input).
_PART_SCHEMA = pa.schema([f for f in RESULT_SCHEMA if f.name not in ("size", "true_label")])
_FACE_PART_SCHEMA = pa.schema([f for f in FACE_SCHEMA if f.name != "path"])


def _write_table(path: Path, table: pa.Table) -> None:
    with atomic.atomic_path(path) as tmp:
        pq.write_table(table, tmp)


class ResultsFolder:
    """``RESULTS/``: parts in, merged tables out."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(os.path.abspath(root))
        self.parts = self.root / "parts"

    def prepare(self, settings: dict) -> None:
        """Create the folder, clear temporary files of dead runs, and check (or record) the settings."""
        self.parts.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.parts):
            for tmp in folder.glob(f"*{atomic.TMP_SUFFIX}"):
                pid = tmp.name.rsplit(".", 2)[-2]
                if not (pid.isdigit() and int(pid) != os.getpid() and atomic.pid_alive(int(pid))):
                    tmp.unlink(missing_ok=True)
        config = self.root / "config.json"
        if config.is_file():
            try:
                found = json.loads(config.read_text(encoding="utf-8")).get("settings")
            except (ValueError, AttributeError):
                found = None
            if isinstance(found, dict):
                diff = sorted(k for k in set(found) | set(settings) if found.get(k) != settings.get(k))
                if diff:
                    detail = ", ".join(f"{k}: {found.get(k)!r} -> {settings.get(k)!r}" for k in diff)
                    raise InvalidArgument(f"{self.root} holds results made with other settings ({detail}); use another --out folder")
                return
        atomic.write_json(config, {"version": PART_VERSION, "settings": settings})

    def part_path(self, sha256: str) -> Path:
        return self.parts / f"{sha256}.parquet"

    def faces_part_path(self, sha256: str) -> Path:
        return self.parts / f"{sha256}.faces.parquet"

    def write_part(self, sha256: str, path: str, row: dict, faces: Sequence[dict]) -> None:
        """One finished input: its faces, then its result row (the marker that it is done)."""
        face_rows = [{**f, "sha256": sha256} for f in faces]
        _write_table(self.faces_part_path(sha256), pa.Table.from_pylist(face_rows, schema=_FACE_PART_SCHEMA))
        result = {**row, "path": path, "sha256": sha256}
        _write_table(self.part_path(sha256), pa.Table.from_pylist([result], schema=_PART_SCHEMA))

    def done(self) -> dict[str, dict]:
        """``{sha256: result row}`` of every readable result part (an unreadable one counts as not done)."""
        rows: dict[str, dict] = {}
        for part in sorted(self.parts.glob("*.parquet")):
            name = part.name[: -len(".parquet")]
            if name.endswith(".faces") or not self.faces_part_path(name).is_file():
                continue
            try:
                table = pq.read_table(part, schema=_PART_SCHEMA)
            except (OSError, pa.ArrowException) as exc:
                log.warning("ignoring unreadable part %s (%s): that input is scanned again", part, exc)
                continue
            if table.num_rows == 1:
                rows[name] = table.to_pylist()[0]
        return rows

    def merge(self, inputs: Sequence[HashedInput], done: dict[str, dict] | None = None) -> tuple[pa.Table, pa.Table]:
        """Write ``results.parquet`` (a row per input, in input order) and ``faces.parquet`` from the parts.

        Inputs that could not be read at all get an ERROR row; inputs without a part (a scan stopped
        early) get no row.
        """
        done = self.done() if done is None else done
        results: list[dict] = []
        faces: list[pa.Table] = []
        face_cache: dict[str, pa.Table] = {}
        for item in inputs:
            base = {"path": item.path, "sha256": item.sha256, "size": item.size, "true_label": item.label}
            if item.sha256 is None:
                results.append({**base, "label": ERROR, "frames": 0, "faces": 0, "error": item.error or "unreadable"})
                continue
            part = done.get(item.sha256)
            if part is None:
                continue
            results.append({**part, **base})
            if item.sha256 not in face_cache:
                face_cache[item.sha256] = pq.read_table(self.faces_part_path(item.sha256), schema=_FACE_PART_SCHEMA)
            table = face_cache[item.sha256]
            faces.append(table.add_column(0, "path", pa.array([item.path] * table.num_rows, pa.string())).select(list(FACE_COLUMNS)))
        result_table = pa.Table.from_pylist(results, schema=RESULT_SCHEMA)
        face_table = pa.concat_tables(faces).cast(FACE_SCHEMA) if faces else FACE_SCHEMA.empty_table()
        _write_table(self.root / "results.parquet", result_table)
        _write_table(self.root / "faces.parquet", face_table)
        return result_table, face_table


# --------------------------------------------------------------------------- summary


@dataclass
class ScanSummary:
    """What a scan did: counts, errors and speed. ``processed`` were scanned by this run, ``resumed`` were done before."""

    out_dir: str
    inputs: int
    rows: int
    processed: int
    resumed: int
    duplicates: int
    labels: dict[str, int]
    by_true_label: dict[str, dict[str, int]]
    errors: list[dict]
    seconds: float
    per_minute: float | None
    engine: str
    workers: int
    model: str | None
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "out_dir": self.out_dir,
            "inputs": self.inputs,
            "rows": self.rows,
            "processed": self.processed,
            "resumed": self.resumed,
            "duplicates": self.duplicates,
            "labels": self.labels,
            "by_true_label": self.by_true_label,
            "errors": len(self.errors),
            "error_rows": self.errors,
            "seconds": round(self.seconds, 3),
            "inputs_per_minute": None if self.per_minute is None else round(self.per_minute, 2),
            "engine": self.engine,
            "workers": self.workers,
            "model": self.model,
            "settings": self.settings,
        }

    def text(self) -> str:
        counts = ", ".join(f"{label} {n}" for label, n in self.labels.items()) or "nothing"
        speed = "-" if self.per_minute is None else f"{self.per_minute:.1f} inputs/min"
        lines = [
            f"scanned {self.inputs} inputs into {self.out_dir}: {counts}",
            f"  {self.processed} scanned now, {self.resumed} already done, {self.duplicates} duplicate contents; "
            f"{self.seconds:.1f} s ({speed}, {self.engine} engine, {self.workers} {'classifier actors' if self.engine == 'ray' else 'workers'})",
        ]
        for truth, verdicts in self.by_true_label.items():
            lines.append(f"  true {truth}: " + ", ".join(f"{label} {n}" for label, n in verdicts.items()))
        for row in self.errors[:10]:
            lines.append(f"  ERROR {row['path']}: {row['error']}")
        if len(self.errors) > 10:
            lines.append(f"  ... and {len(self.errors) - 10} more errors (summary.json lists them all)")
        return "\n".join(lines)


def summarise(results: pa.Table, **info) -> ScanSummary:
    rows = results.to_pylist()
    labels: dict[str, int] = {}
    by_truth: dict[str, dict[str, int]] = {}
    for row in rows:
        labels[row["label"]] = labels.get(row["label"], 0) + 1
        if row["true_label"]:
            per = by_truth.setdefault(row["true_label"], {})
            per[row["label"]] = per.get(row["label"], 0) + 1
    order = {"REAL": 0, "FAKE": 1, "NO_FACE": 2, ERROR: 3}
    labels = dict(sorted(labels.items(), key=lambda kv: order.get(kv[0], 9)))
    errors = [{"path": r["path"], "error": r["error"]} for r in rows if r["label"] == ERROR]
    models = sorted({r["model"] for r in rows if r["model"]})
    by_true_label = dict(sorted(by_truth.items()))
    return ScanSummary(rows=len(rows), labels=labels, by_true_label=by_true_label, errors=errors, model=", ".join(models) or None, **info)


def plot_scores(results: pa.Table, path: str | os.PathLike) -> Path | None:
    """A histogram of P(fake) (per ground-truth label when the inputs had one), with the threshold; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    rows = [r for r in results.to_pylist() if r["score"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row["true_label"] or "all", []).append(row["score"])
    bins = [i / 40 for i in range(41)]
    for name, scores in sorted(groups.items()):
        ax.hist(scores, bins=bins, alpha=0.6, label=f"{name} ({len(scores)})")
    thresholds = {r["threshold"] for r in rows if r["threshold"] is not None}
    for threshold in thresholds:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(fake)")
    ax.set_ylabel("inputs")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{len(rows)} inputs with a face")
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
