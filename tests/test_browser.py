"""End to end in a real browser: `streamlit run app.py`, upload a clip through the page, see the result.

Uses Debian's Chromium (/usr/bin/chromium; `make browser-deps` installs it) through the playwright
package; it never downloads a browser. The screenshot goes to pytest's tmp folder; the docs one is
refreshed by docs/make_screenshot.py, which shares these helpers.
"""

from __future__ import annotations

import pytest
from app_support import EXAMPLES, bundled_model_usable, make_checkpoint, screenshot_tools

pytestmark = pytest.mark.slow

tools = screenshot_tools()
if not tools.CHROMIUM.exists():
    pytest.skip(f"{tools.CHROMIUM} is not installed (apt-get install chromium, or `make browser-deps`)", allow_module_level=True)


def test_upload_shows_verdict_heatmaps_and_timeline(tmp_path):
    env = {"FAKELENS_CACHE": str(tmp_path / "cache")}
    if not bundled_model_usable():
        env["FAKELENS_CHECKPOINT"] = str(make_checkpoint(tmp_path))
    out = tmp_path / "screenshot-fake.png"
    media = EXAMPLES / "fake_ffpp_NeuralTextures_004_982.mp4"
    with tools.serve(env) as url:
        found = tools.capture(url, media, out, frames=8)
    assert found["verdict"] in ("Verdict: FAKE", "Verdict: REAL"), found
    assert found["heatmaps"] >= 1 and found["charts"] >= 1, found
    assert found["errors"] == 0, found
    assert out.stat().st_size > 50_000  # a real full-page picture, not a blank page
