"""Dataset -> face crops + one manifest: resumable, sharded and parallel.

For each :class:`~fakelens.data.VideoRecord`, frames are sampled, faces found with MTCNN and the
crops written as ``OUT/crops/<relpath>/<frame>_<track>.jpg`` (224x224 by default). Crops are JPEG at
quality 95 by default: about 5x smaller and faster to read back than PNG, and the source videos are
already H.264-compressed, so a q95 re-encode adds little error next to the codec's, and it treats
real and fake crops alike. ``image_format="png"`` gives lossless crops instead.

Crash safety. Every file is written to a temporary name and moved into place with ``os.replace``. A
video's crops are written first, then its *part file* ``OUT/parts/<hash>.json`` (its status, timings and
manifest rows). A video is done if and only if its part file exists, so a run killed at any moment
(even ``kill -9``) and started again redoes only the unfinished video, after clearing its half-written
crop folder. ``OUT/manifest.csv``, ``OUT/videos.csv`` and ``OUT/failures.csv`` are rebuilt from the
part files at the end. A video that cannot be read, or has no face, gets a part file with its status
and reason (so it is not retried unless ``retry_failed``), and the run goes on.

Scaling out. ``workers > 1`` runs a process pool whose workers each build one detector and use
``cpu_count // workers`` torch threads. ``shard=(i, n)`` processes the videos whose relpath hashes to
``i`` modulo ``n`` (stable when a dataset gains files), so ``n`` machines can share a dataset; their
output folders are joined with :func:`merge` (or all shards may write to one shared folder).

==========================  ====================================================================
:mod:`~.config`             :class:`PreprocessConfig` and its checks, :class:`VideoResult`, :class:`PreprocessSummary`
:mod:`~.folder`             the output folder: part files, temporary files, the lock, ``config.json``, the CSVs
:mod:`~.video`              one video: :func:`build_extractor`, :func:`process_video`
:mod:`~.run`                :func:`preprocess` over many videos: shards, resume, worker processes
:mod:`~.merging`            :func:`merge` (``fakelens preprocess --merge``)
==========================  ====================================================================

Every public name is importable from ``fakelens.preprocess`` itself, which imports neither torch nor
OpenCV (the detector is built on first use).
"""

from __future__ import annotations

from fakelens.preprocess.config import STATUSES, PreprocessConfig, PreprocessError, PreprocessSummary, VideoResult
from fakelens.preprocess.folder import PART_VERSION, clean_tmp_files, crop_dir, part_path, read_part, write_outputs
from fakelens.preprocess.merging import merge
from fakelens.preprocess.run import in_shard, parse_shard, preprocess
from fakelens.preprocess.video import build_extractor, process_video

__all__ = [
    "PreprocessConfig",
    "PreprocessError",
    "PreprocessSummary",
    "VideoResult",
    "build_extractor",
    "process_video",
    "preprocess",
    "merge",
    "parse_shard",
    "in_shard",
    "write_outputs",
    "clean_tmp_files",
    "part_path",
    "read_part",
    "crop_dir",
    "STATUSES",
    "PART_VERSION",
]
