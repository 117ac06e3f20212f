"""`fakelens serve` end to end: a real uvicorn server in a subprocess on 127.0.0.1, driven over HTTP with httpx.

Results are compared with `Detector.default().predict` on the same files in this process; errors are made
with real bad inputs (a truncated video, a text file named .mp4, an oversized upload, a wrong token, a bad
threshold, a flood of jobs, an analysis slower than the timeout). Each server gets a private TMPDIR, so the
tests can see that every upload is removed.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

for _module in ("fastapi", "uvicorn", "python_multipart", "httpx"):
    pytest.importorskip(_module, reason=f'the HTTP API needs {_module}: pip install "fakelens[serve]" httpx')

import httpx  # noqa: E402

from fakelens.serve.settings import available_cores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IMAGES = [EXAMPLES / "real_ffpp_ex_original.png", EXAMPLES / "fake_ffpp_ex_deepfakes.png"]
SHORT_VIDEO = EXAMPLES / "real_dfdc_aayrffkzxn.mp4"  # 6 s, 256x256
HD_VIDEO = EXAMPLES / "real_ffpp_004.mp4"  # 12 s, 1280x720, 181 KB
BIG_VIDEO = EXAMPLES / "fake_ffpp_NeuralTextures_004_982.mp4"  # 1.2 MB
FRAMES = 4
TOKEN = "test-token-5d41402abc4b2a76"
#: Generous: the server imports torch and loads the model, on a machine that may be busy.
START_TIMEOUT = 240
REQUEST_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m fakelens serve ...` on a free port, with a private TMPDIR; ready once /readyz says so."""

    def __init__(self, tmp: Path, *args: str, token: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir()
        self.log = tmp / "server.log"
        env = dict(os.environ, TMPDIR=str(self.tmpdir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        env.pop("FAKELENS_API_TOKEN", None)
        if token:
            env["FAKELENS_API_TOKEN"] = token
        command = [sys.executable, "-m", "fakelens", "serve", "--port", str(self.port), *args]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.close()
        pytest.fail(f"the server was not ready after {START_TIMEOUT} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def leftovers(self) -> list[Path]:
        """Files under the server's TMPDIR but onnxruntime's session marker (.ses) and torch's inductor cache."""
        return [
            p for p in self.tmpdir.rglob("*") if p.is_file() and p.name != ".ses" and not any(part.startswith("torchinductor") for part in p.parts)
        ]

    def assert_no_uploads(self, within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.leftovers() == []

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def detector():
    from fakelens import Detector

    return Detector.default()


@pytest.fixture(scope="module")
def expected(detector):
    """Detector.default().predict(path, num_frames=frames), computed once per (path, frames)."""
    cache: dict = {}

    def predict(path: Path, frames: int = FRAMES):
        key = (path, frames)
        if key not in cache:
            cache[key] = detector.predict(path, num_frames=frames)
        return cache[key]

    return predict


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The main server: a token, two workers where there are two cores, the default limits."""
    server = Server(tmp_path_factory.mktemp("serve"), "--workers", str(min(2, available_cores())), token=TOKEN)
    yield server
    server.close()
    assert server.process.returncode in (0, -signal.SIGTERM), server.log_text()  # uvicorn re-raises SIGTERM
    assert server.leftovers() == [], "the server left files in its TMPDIR"


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=REQUEST_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """One worker, a queue of one, a 1 MB upload limit and a half-second timeout; no token."""
    server = Server(tmp_path_factory.mktemp("serve-small"), "--workers", "1", "--queue", "1", "--max-upload-mb", "1", "--timeout", "0.5")
    yield server
    server.close()
    assert server.leftovers() == []


def upload(path: Path, name: str | None = None, **fields) -> dict:
    return {"files": {"file": (name or path.name, path.read_bytes())}, "data": {k: str(v) for k, v in fields.items()}}


def assert_matches(body: dict, prediction, name: str) -> None:
    """The API's JSON is Prediction.to_dict() of the same file: same verdict, scores within 1e-5."""
    want = prediction.to_dict()
    assert body["source"] == name
    for key in ("kind", "label", "frames", "faces", "threshold", "aggregate", "model", "track"):
        assert body[key] == want[key], key
    if prediction.score is None:
        assert body["score"] is None
    else:
        assert abs(body["score"] - prediction.score) <= 1e-5
    got = [f["score"] for f in body["face_scores"]]
    assert np.allclose(got, [f.score for f in prediction.faces], atol=1e-5)
    assert set(body) >= set(want)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


# --------------------------------------------------------------------------- the main server


def test_health_ready_model_and_docs(server, client, detector):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}  # open without a token
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["loaded"] == ready["workers"] == min(2, available_cores())
    from fakelens.checkpoint import sha256_file
    from fakelens.detector import DEFAULT_MODEL

    model = client.get("/v1/model").json()
    assert model["name"] == detector.name
    assert model["threshold"] == pytest.approx(detector.threshold, abs=1e-5)
    assert model["sha256"] == sha256_file(DEFAULT_MODEL)
    assert detector.name in model["model_card"]
    assert httpx.get(server.url + "/docs").status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/model", "/healthz", "/readyz"} <= set(paths)


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_image_analysis_matches_the_library(client, expected, path):
    response = client.post("/v1/analyze", **upload(path))
    assert response.status_code == 200, response.text
    assert_matches(response.json(), expected(path), path.name)


@pytest.mark.parametrize("path", [SHORT_VIDEO, HD_VIDEO], ids=lambda p: p.name)
def test_video_analysis_matches_the_library(client, expected, path):
    response = client.post("/v1/analyze", **upload(path, frames=FRAMES))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "video" and body["frames"] == FRAMES
    assert_matches(body, expected(path), path.name)


def test_options_and_heatmaps(client, expected, detector):
    import cv2

    path = IMAGES[1]
    response = client.post("/v1/analyze", **upload(path, threshold=0.0, heatmaps="base64", explain="gradcam"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == "FAKE" and body["threshold"] == 0.0 and body["explain_method"] == "gradcam"
    assert abs(body["score"] - expected(path).score) <= 1e-5
    assert len(body["heatmaps"]) == body["faces"] >= 1
    for entry in body["heatmaps"]:
        for key, channels in (("heatmap_png", None), ("overlay_png", 3)):
            image = cv2.imdecode(np.frombuffer(base64.b64decode(entry[key]), np.uint8), cv2.IMREAD_UNCHANGED)
            assert image.shape[:2] == (224, 224) and (image.ndim == 2 if channels is None else image.shape[2] == 3)


def test_job_round_trip(client, expected):
    response = client.post("/v1/jobs", **upload(SHORT_VIDEO, frames=FRAMES))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running") and response.headers["location"] == f"/v1/jobs/{job['id']}"
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(response.headers["location"]).json()
    assert job["status"] == "done", job
    assert job["error"] is None and job["seconds"] > 0
    assert_matches(job["result"], expected(SHORT_VIDEO), SHORT_VIDEO.name)
    assert client.get(response.headers["location"]).json()["status"] == "done"  # kept after being read
    assert_error(client.get("/v1/jobs/0123456789abcdef"), 404, "not_found")


def test_bad_media(server, client, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(BIG_VIDEO.read_bytes()[:40_000])
    body = assert_error(client.post("/v1/analyze", **upload(truncated, frames=FRAMES)), 422, "unreadable_media")
    assert "truncated.mp4" in body["message"] and str(server.tmpdir) not in body["message"]

    text = tmp_path / "notes.mp4"
    text.write_text("these are not the frames you are looking for\n" * 40)
    assert_error(client.post("/v1/analyze", **upload(text)), 415, "unsupported_media")
    assert_error(client.post("/v1/jobs", **upload(text)), 415, "unsupported_media")  # refused before queueing

    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_error(client.post("/v1/analyze", **upload(empty)), 422, "unreadable_media")

    # A damaged video passes the content check, so the job takes it and fails it.
    job = client.post("/v1/jobs", **upload(truncated, frames=FRAMES)).json()
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "error" and job["result"] is None
    assert job["error"]["code"] == "unreadable_media" and job["error"]["status"] == 422
    server.assert_no_uploads()


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"threshold": "1.5"}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"frames": "0"}, "frames"),
        ({"frames": "2.5"}, "frames"),
        ({"frames": "100000"}, "frames"),
        ({"explain": "saliency"}, "explain"),
        ({"heatmaps": "png"}, "heatmaps"),
        ({"aggregate": "max"}, "aggregate"),
        ({"frame": "4"}, "frame"),  # a typo is not silently ignored
    ],
)
def test_bad_parameters_are_400(server, client, fields, fragment):
    response = client.post("/v1/analyze", **upload(IMAGES[0], **fields))
    assert fragment in assert_error(response, 400, "invalid_argument")["message"]
    server.assert_no_uploads()


def test_malformed_requests_are_400(server, client):
    assert_error(client.post("/v1/analyze", data={"frames": "4"}), 400, "bad_request")  # no file
    assert_error(client.post("/v1/analyze", json={"file": "x"}), 400, "bad_request")  # not a form
    wrong_field = client.post("/v1/analyze", files={"image": ("a.png", IMAGES[0].read_bytes())})
    assert_error(wrong_field, 400, "bad_request")
    assert_error(client.get("/v1/analyze"), 405, "method_not_allowed")
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    server.assert_no_uploads()


def test_token(server):
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.post(server.url + "/v1/analyze", headers=headers, timeout=REQUEST_TIMEOUT, **upload(IMAGES[0]))
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(httpx.get(server.url + "/v1/model", headers=headers), 401, "unauthorized")
        assert_error(httpx.get(server.url + "/v1/jobs/abc", headers=headers), 401, "unauthorized")
    assert httpx.get(server.url + "/healthz", headers={"Authorization": "Bearer wrong-token"}).status_code == 200
    server.assert_no_uploads()


# --------------------------------------------------------------------------- limits (the small server)


def test_oversized_upload_is_413(small_server, tmp_path):
    started = time.monotonic()
    response = httpx.post(small_server.url + "/v1/analyze", timeout=REQUEST_TIMEOUT, **upload(BIG_VIDEO))
    assert_error(response, 413, "too_large")
    blob = tmp_path / "blob.mp4"
    blob.write_bytes(os.urandom(8 * 1024 * 1024))
    assert_error(httpx.post(small_server.url + "/v1/jobs", timeout=REQUEST_TIMEOUT, **upload(blob)), 413, "too_large")

    # Without a Content-Length the body streams in chunks; the limit cuts it off all the same.
    def chunks():
        yield b'--b0und4ry\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n\r\n'
        for _ in range(64):
            yield b"\0" * 65536
        yield b"\r\n--b0und4ry--\r\n"

    response = httpx.post(
        small_server.url + "/v1/analyze",
        content=chunks(),
        timeout=REQUEST_TIMEOUT,
        headers={"Content-Type": "multipart/form-data; boundary=b0und4ry"},
    )
    assert_error(response, 413, "too_large")
    assert time.monotonic() - started < 60
    small_server.assert_no_uploads()
    assert httpx.get(small_server.url + "/readyz").status_code == 200


def test_busy_is_429_and_slow_is_504(small_server):
    url = small_server.url
    # Each job decodes 128 frames of 720p: longer than the 0.5 s timeout, so the worker stays busy a while.
    statuses, accepted = [], []
    for _ in range(6):
        response = httpx.post(url + "/v1/jobs", timeout=REQUEST_TIMEOUT, **upload(HD_VIDEO, frames=128))
        statuses.append(response.status_code)
        if response.status_code == 202:
            accepted.append(response.json()["id"])
        else:
            assert_error(response, 429, "busy")
            assert int(response.headers["retry-after"]) >= 1
    assert statuses[0] == 202 and 429 in statuses[:3], statuses  # one running + a queue of one, then full

    for job_id in accepted:  # each stops at the first stage past its deadline
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while (job := httpx.get(f"{url}/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job["status"] == "error" and job["error"]["code"] == "timeout" and job["error"]["status"] == 504
    response = httpx.post(url + "/v1/analyze", timeout=REQUEST_TIMEOUT, **upload(HD_VIDEO, frames=128))
    assert_error(response, 504, "timeout")
    small_server.assert_no_uploads()


# --------------------------------------------------------------------------- the command line


def test_cli_refuses_remote_without_token(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("FAKELENS_API_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "fakelens", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "FAKELENS_API_TOKEN" in done.stderr and "--allow-remote" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "fakelens", "serve", "--queue", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--queue" in bad.stderr


def test_cli_without_the_serve_extra():
    """Without FastAPI: `import fakelens` and `fakelens --help` work, and `fakelens serve` says what to install."""
    script = (
        "import sys; sys.modules['fastapi'] = None\n"
        "import fakelens, fakelens.serve\n"
        "from fakelens.cli import build_parser, main\n"
        "assert 'serve' in build_parser().format_help()\n"
        "sys.exit(main(['serve']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert 'pip install "fakelens[serve]"' in done.stderr and "fastapi" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- load


@pytest.mark.slow
def test_load(server, client, expected):
    """40 requests from 8 concurrent clients (the example images and a short video): no 5xx, every answer
    is its own file's, and afterwards no upload is left and the server's memory is back near where it was."""
    inputs = [(IMAGES[0], None), (IMAGES[1], None), (SHORT_VIDEO, FRAMES)]
    for path, frames in inputs:  # warm every code path once, then measure the baseline
        assert client.post("/v1/analyze", **upload(path, **({"frames": frames} if frames else {}))).status_code == 200
    baseline = server.rss_kb()
    plan = [inputs[i % len(inputs)] for i in range(40)]

    def call(item):
        path, frames = item
        fields = {"frames": frames} if frames else {}
        started = time.monotonic()
        response = client.post("/v1/analyze", **upload(path, **fields))
        return path, frames, response, time.monotonic() - started

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, plan, timeout=900))
    elapsed = time.monotonic() - started
    for path, frames, response, _ in results:
        assert response.status_code < 500, response.text
        assert response.status_code == 200, response.text
        assert_matches(response.json(), expected(path, frames or FRAMES), path.name)
    server.assert_no_uploads()
    assert httpx.get(server.url + "/readyz").json()["running"] == 0
    after = server.rss_kb()
    slack = max(400 * 1024, baseline // 2)
    print(f"40 requests in {elapsed:.1f} s; RSS {baseline / 1024:.0f} MB before, {after / 1024:.0f} MB after")
    assert after <= baseline + slack, f"RSS grew from {baseline / 1024:.0f} MB to {after / 1024:.0f} MB"
