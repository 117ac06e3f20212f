"""Regenerate docs/screenshot-fake.png: start the app, upload a fake clip in headless Chromium, screenshot.

    .venv/bin/python docs/make_screenshot.py                      # bundled model, NeuralTextures clip
    .venv/bin/python docs/make_screenshot.py --checkpoint run.pt   # any checkpoint
    .venv/bin/python docs/make_screenshot.py --threshold 0.40      # move the sidebar threshold first

It drives the real upload widget, exactly as a person would, and fails (exit 1) if the page shows no
verdict, no heatmap or no timeline. tests/test_browser.py uses the same helpers. Needs Debian's
``chromium`` (``apt-get install chromium``) and the ``playwright`` Python package; it never downloads
a browser.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_MEDIA = ROOT / "examples" / "fake_ffpp_NeuralTextures_004_982.mp4"
DEFAULT_OUT = ROOT / "docs" / "screenshot-fake.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict | None = None, port: int | None = None, command: list[str] | None = None, timeout: float = 90.0):
    """Run ``streamlit run app.py`` (or ``command``) headless on a free port; yield its URL; stop it after."""
    port = port or free_port()
    command = command or [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = open(os.devnull, "wb") if os.environ.get("FAKELENS_QUIET_SERVER") else None
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with code {process.returncode} before serving")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        # The server runs in its own session, so its process group is exactly what we started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log:
            log.close()


def capture(url: str, media: Path, out: Path, frames: int | None = None, threshold: float | None = None, timeout_s: float = 400.0) -> dict:
    """Upload ``media`` through the page's file widget, wait for the result, save a full-page PNG.

    Returns what the page showed: ``verdict`` text, ``heatmaps`` (overlay images), ``charts`` (timelines).
    Raises AssertionError when the verdict, a heatmap or (for videos) the timeline is missing.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached")
            _wait_idle(page)
            if frames is not None:
                box = page.get_by_label("Frames to sample (videos)", exact=True)
                box.fill(str(frames))
                box.press("Enter")
                _wait_idle(page)
            if threshold is not None:
                _set_threshold(page, threshold)
                _wait_idle(page)
            page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', str(media))
            failure = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
            try:
                page.get_by_text("Verdict:").or_(failure).first.wait_for(timeout=timeout_s * 1000)
            except Exception:
                page.screenshot(path=str(out.with_name(out.stem + "-failed.png")), full_page=True)
                raise
            if failure.count():
                raise AssertionError(f"the app shows an error: {failure.first.inner_text()}")
            overlays = page.locator('[data-testid="stImage"]').filter(has_text="overlay")
            overlays.first.wait_for(timeout=timeout_s * 1000)
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            if media.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp"}:
                charts.first.wait_for()
            # Let the chart draw and the images load before the picture is taken.
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(2000)
            verdict = page.locator("h2").filter(has_text="Verdict:").first.inner_text()
            found = {
                "verdict": verdict,
                "heatmaps": overlays.count(),
                "charts": charts.count(),
                "errors": page.locator('[data-testid="stException"]').count(),
            }
            # Streamlit scrolls inside its main block, so grow the viewport to the content to get it all.
            height = page.evaluate(
                "() => Math.max(document.body.scrollHeight,"
                " ...Array.from(document.querySelectorAll('[data-testid=\"stMain\"], section')).map(e => e.scrollHeight))"
            )
            page.set_viewport_size({"width": 1400, "height": int(min(height + 40, 12000))})
            page.wait_for_timeout(1500)
            out.parent.mkdir(parents=True, exist_ok=True)
            temporary = out.with_name(out.name + ".tmp.png")
            page.screenshot(path=str(temporary), full_page=True)
            os.replace(temporary, out)
            return found
        finally:
            browser.close()


def _wait_idle(page, timeout_ms: float = 120_000) -> None:
    """Wait until the app has no script run in flight (its "Running..." indicator is gone)."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


def _set_threshold(page, threshold: float) -> None:
    """Move the sidebar's threshold slider with the keyboard (0.01 per key press)."""
    slider = page.locator('input[type="range"][aria-label="Threshold on P(fake)"]')
    current = float(slider.input_value())
    steps = round((threshold - current) / 0.01)
    slider.focus()
    for _ in range(abs(steps)):
        slider.press("ArrowRight" if steps > 0 else "ArrowLeft")
    _wait_idle(page)
    if abs(float(slider.input_value()) - threshold) > 0.005:
        raise AssertionError(f"the threshold slider shows {slider.input_value()}, not {threshold}")


def shrink(path: Path) -> None:
    """Rewrite a PNG with a 256-colour palette (dithered): a docs picture need not weigh megabytes."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    temporary = path.with_name(path.name + ".tmp.png")
    small.save(temporary, optimize=True)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA, help=f"file to upload (default {DEFAULT_MEDIA.name})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the PNG goes (default docs/screenshot-fake.png)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint to serve (default: the bundled model)")
    parser.add_argument("--threshold", type=float, default=None, help="set the sidebar threshold first (default: the model's)")
    parser.add_argument("--frames", type=int, default=None, help="set frames to sample first (default: the app's)")
    parser.add_argument("--full-colour", action="store_true", help="keep every colour (default: 256 colours, about a third of the file size)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} not found; install Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    env = {"FAKELENS_CHECKPOINT": str(args.checkpoint.resolve())} if args.checkpoint else {}
    with serve(env) as url:
        found = capture(url, args.media.resolve(), args.out, frames=args.frames, threshold=args.threshold)
    if not args.full_colour:
        shrink(args.out)
    print(f"{args.out}: {found}")
    if "FAKE" not in found["verdict"]:
        print("warning: the page does not show FAKE; pass --threshold or another --media", file=sys.stderr)
    return 0 if found["heatmaps"] and not found["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
