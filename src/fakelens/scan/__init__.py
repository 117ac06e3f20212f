"""Scan a collection of images and videos into Parquet tables, resumably: ``fakelens scan``.

>>> from fakelens.scan import scan
>>> summary = scan(["examples/"], "scan-out")            # local engine: a pool of processes
>>> summary = scan(["list.csv"], "scan-out", engine="ray")  # Ray Data, on a local instance or a cluster

Modules: :mod:`~fakelens.scan.sources` (what to scan, content hashes), :mod:`~fakelens.scan.stages`
(one input, whole or split in two stages), :mod:`~fakelens.scan.results` (parts, merged tables,
summary, plot), :mod:`~fakelens.scan.local` and :mod:`~fakelens.scan.ray_engine` (the engines),
:mod:`~fakelens.scan.run` (``scan``). Importing this package needs neither torch nor Ray; pyarrow is needed.
"""

from __future__ import annotations

from fakelens.scan.results import FACE_COLUMNS, RESULT_COLUMNS, ResultsFolder, ScanSummary
from fakelens.scan.run import ENGINES, scan
from fakelens.scan.sources import HashedInput, ScanInput, expand_sources, hash_inputs, read_list, sha256_file
from fakelens.scan.stages import ScanSettings

__all__ = [
    "ENGINES",
    "FACE_COLUMNS",
    "RESULT_COLUMNS",
    "HashedInput",
    "ResultsFolder",
    "ScanInput",
    "ScanSettings",
    "ScanSummary",
    "expand_sources",
    "hash_inputs",
    "read_list",
    "scan",
    "sha256_file",
]
