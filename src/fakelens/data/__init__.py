"""Training data: dataset readers, the manifest, crop images and augmentation, a torch Dataset and samplers.

==========================  ====================================================================
:mod:`~.records`            :class:`VideoRecord` (what readers return), :class:`DatasetError`, split helpers
:mod:`~.datasets`           :func:`read_dataset` and the folder / list readers, :func:`balance`, counts
:mod:`~.celebdf`            Celeb-DF v2 reader
:mod:`~.ffpp`               FaceForensics++ reader (official split: package data ``ffpp_splits.json``)
:mod:`~.manifest`           the manifest's columns, its reader (:class:`ManifestRow`) and writer
:mod:`~.augment`            :func:`load_crop`, :class:`Augmenter`, keyed randomness (:func:`sample_rng`)
:mod:`~.crops`              :class:`CropDataset`, :func:`normalize_batch`, loader helpers (torch)
:mod:`~.sampling`           :class:`BalancedSampler`, :class:`PairedSampler`, :func:`kind_weights` (torch)
==========================  ====================================================================

Every public name is importable from ``fakelens.data`` itself. The readers and the manifest load at once
and need neither torch nor OpenCV (``fakelens preprocess`` stays light); the image, Dataset and sampler
names are loaded on first use.
"""

from __future__ import annotations

import importlib

from fakelens.data.celebdf import read_celebdf, read_celebdf_test_list
from fakelens.data.datasets import (
    BALANCE_MODES,
    DATASETS,
    balance,
    class_counts,
    format_counts,
    read_dataset,
    read_folder,
    read_list,
)
from fakelens.data.ffpp import FFPP_METHODS, load_ffpp_splits, read_ffpp
from fakelens.data.manifest import (
    FAILURE_COLUMNS,
    MANIFEST_COLUMNS,
    VIDEO_COLUMNS,
    ManifestError,
    ManifestRow,
    atomic_write_text,
    manifest_from_face_images,
    read_manifest,
    write_csv,
    write_manifest,
)
from fakelens.data.records import CROSS_IDENTITY, DatasetError, VideoRecord, assign_splits, split_by_group

#: Names whose modules import OpenCV or torch, loaded on first access.
_LAZY = {
    "Augmenter": "augment",
    "load_crop": "augment",
    "sample_rng": "augment",
    "PURPOSE_EVAL_SBI": "crops",
    "PURPOSE_TRAIN": "crops",
    "CropDataset": "crops",
    "collate": "crops",
    "normalize_batch": "crops",
    "worker_init": "crops",
    "BalancedSampler": "sampling",
    "PairedSampler": "sampling",
    "kind_weights": "sampling",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # readers
    "BALANCE_MODES",
    "CROSS_IDENTITY",
    "DATASETS",
    "FFPP_METHODS",
    "DatasetError",
    "VideoRecord",
    "assign_splits",
    "balance",
    "class_counts",
    "format_counts",
    "load_ffpp_splits",
    "read_celebdf",
    "read_celebdf_test_list",
    "read_dataset",
    "read_ffpp",
    "read_folder",
    "read_list",
    "split_by_group",
    # the manifest
    "FAILURE_COLUMNS",
    "MANIFEST_COLUMNS",
    "VIDEO_COLUMNS",
    "ManifestError",
    "ManifestRow",
    "atomic_write_text",
    "manifest_from_face_images",
    "read_manifest",
    "write_csv",
    "write_manifest",
    # images, Dataset, samplers
    "Augmenter",
    "load_crop",
    "sample_rng",
    "PURPOSE_EVAL_SBI",
    "PURPOSE_TRAIN",
    "CropDataset",
    "collate",
    "normalize_batch",
    "worker_init",
    "BalancedSampler",
    "PairedSampler",
    "kind_weights",
]
