"""The app as a person sees it: seconds from an upload to the verdict, and to the complete page, in a real browser.

Runs the app (``streamlit run app.py``) of this checkout and, with ``--old``, of an older checkout (its
``src/`` on ``PYTHONPATH``, e.g. a ``git worktree`` of the commit before #11), each in its own server,
uploads the clip through the page with Playwright in Debian's Chromium (``make browser-deps``), and times
"Verdict:" appearing and the page being complete (a heatmap overlay shown and no script run in flight).
Each app is warmed first with one upload of the clip (model loading and the ONNX session are per process,
kept across reruns), then timed ``--repeat`` times with a fresh page. Both apps load this checkout's bundled
model (``FAKELENS_CHECKPOINT``), so the times compare code, not models.

    .venv/bin/python benchmarks/app_speed.py [--media ../shared/data/videos/dfdc/ayhm23__fake.mp4] [--old /tmp/fakelens-old]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

from make_screenshot import CHROMIUM, CHROMIUM_ARGS, _wait_idle, serve  # noqa: E402

from fakelens.detector import DEFAULT_MODEL  # noqa: E402
from fakelens.sysinfo import describe_machine  # noqa: E402

DEFAULT_MEDIA = ROOT.parent / "shared" / "data" / "videos" / "dfdc" / "ayhm23__fake.mp4"  # 1920x1080, 10 s


def time_upload(url: str, media: Path, timeout_s: float = 600.0) -> tuple[float, float]:
    """(seconds to "Verdict:", seconds to the complete page) for one upload on a fresh page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(url)
            page.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached")
            _wait_idle(page)
            start = time.perf_counter()
            page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', str(media))
            page.get_by_text("Verdict:").first.wait_for()
            verdict = time.perf_counter() - start
            page.locator('[data-testid="stImage"]').filter(has_text="overlay").first.wait_for()
            _wait_idle(page, timeout_s * 1000)
            return verdict, time.perf_counter() - start - 0.5  # _wait_idle's fixed half-second pause
        finally:
            browser.close()


def bench(label: str, env: dict, media: Path, repeat: int) -> None:
    with serve(env) as url:
        time_upload(url, media)  # warm-up: the model loads on the first page
        runs = [time_upload(url, media) for _ in range(repeat)]
    verdict = statistics.median(r[0] for r in runs)
    complete = statistics.median(r[1] for r in runs)
    print(f"{label:10} verdict {verdict:6.2f} s   complete page {complete:6.2f} s   runs: {', '.join(f'{a:.1f}/{b:.1f}' for a, b in runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--old", type=Path, default=None, help="an older checkout to time too (before)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is not installed (make browser-deps)")
    print(f"machine: {describe_machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"clip: {args.media}")
    # Both apps load this checkout's bundled model, so "before" and "after" differ only in code.
    env = {"FAKELENS_QUIET_SERVER": "1", "FAKELENS_CHECKPOINT": str(DEFAULT_MODEL)}
    os.environ.update(env)
    if args.old is not None:
        bench("before", {"PYTHONPATH": str(args.old / "src")}, args.media, args.repeat)
    bench("after", {"PYTHONPATH": str(ROOT / "src")}, args.media, args.repeat)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
