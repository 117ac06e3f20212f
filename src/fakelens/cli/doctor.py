"""``fakelens doctor``: versions of the key packages and whether the installed set matches the lock."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="print the versions a bug report needs and check them against the lock",
        description="Print fakelens', Python's and the key packages' versions (torch, onnxruntime, OpenCV, "
        "PyAV, Streamlit, ...) and compare every installed package with the lock the tests passed with. "
        "Exit code 1 when the lock is not satisfied.",
    )
    parser.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="requirements lock to check (default: fakelens/runtime.lock, shipped with the package; "
        "requirements.lock in a checkout covers the test tools too)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.doctor import RUNTIME_LOCK, check_lock, report
    from fakelens.errors import FakelensError

    lock = args.lock if args.lock is not None else RUNTIME_LOCK
    if not lock.is_file():
        raise FakelensError(f"{lock}: lock file not found")
    print(report(lock))
    return 0 if check_lock(lock).satisfied else 1
