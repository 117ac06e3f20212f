"""``fakelens app``: the Streamlit app (upload a video or image, see the verdict and why) in a browser."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from fakelens.constants import DEFAULT_MAX_UPLOAD_MB  # Streamlit's ``server.maxUploadSize``; the app also checks it


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app",
        help="open the web app: upload a video or image, see the verdict and the heatmaps",
        description="Start the Streamlit app on this machine (http://localhost:PORT). "
        "Extra arguments after -- go to `streamlit run`, e.g. -- --server.address 0.0.0.0",
    )
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: $FAKELENS_CHECKPOINT, else the bundled model)")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB, help=f"largest upload in MB (default {DEFAULT_MAX_UPLOAD_MB})")
    parser.add_argument("--headless", action="store_true", help="do not open a browser window (default: open one)")
    parser.add_argument("streamlit_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line for the packaged UI module (works for non-editable installs too)."""
    import fakelens.ui  # noqa: F401  (fails here, clearly, if streamlit is missing)

    script = Path(fakelens.ui.__file__).resolve()
    extra = [a for a in (args.streamlit_args or []) if a != "--"]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.port",
        str(args.port),
        "--server.maxUploadSize",
        str(args.max_upload_mb),
        "--server.headless",
        "true" if args.headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        *extra,
    ]


def run(args: argparse.Namespace) -> int:
    from fakelens.errors import CheckpointError

    env = dict(os.environ)
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise CheckpointError(f"{args.checkpoint}: file not found")
        env["FAKELENS_CHECKPOINT"] = str(args.checkpoint.resolve())
    if args.max_upload_mb < 1:
        print("fakelens: error: --max-upload-mb must be at least 1", file=sys.stderr)
        return 2
    cmd = command(args)
    print(f"fakelens app on http://localhost:{args.port} (Ctrl+C to stop)", flush=True)
    server = subprocess.Popen(cmd, env=env)
    # Stopping `fakelens app` (SIGTERM from a service manager) must stop the server too.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())
    try:
        while True:
            try:
                return server.wait()
            except KeyboardInterrupt:
                # Ctrl+C reached the server too (same process group); let it shut down cleanly.
                server.terminate()
    finally:
        signal.signal(signal.SIGTERM, previous)
