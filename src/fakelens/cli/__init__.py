"""The ``fakelens`` command: a thin shell over the library, one module per subcommand.

Each module in this package defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit code. Heavy imports
(torch, av) happen inside those functions so that ``fakelens --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fakelens.errors import FakelensError

# Order is the order shown in --help.
SUBCOMMANDS = ["predict", "scan", "faces", "preprocess", "train", "evaluate", "explain", "export", "app", "serve", "doctor"]


class _VersionAction(argparse.Action):
    """``--version``: the full report of :func:`fakelens.doctor.report` (what a bug report needs)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from fakelens.doctor import report

        print(report())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakelens",
        description="Detect deepfakes in face videos and images, and show why.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the versions of fakelens and the key packages, and the lock's status, then exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"fakelens.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fakelens.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s" if args.verbose else "%(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FakelensError as exc:
        print(f"fakelens: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fakelens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
