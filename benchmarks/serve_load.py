"""`fakelens serve` under load: latency per kind (images, ~10 s clips) and throughput, from concurrent clients.

Starts a server on 127.0.0.1 (a subprocess with a private TMPDIR), measures each file once through the
library in this process (the baseline: `Detector.predict`, one at a time), then sends the requests from
``--concurrency`` clients and prints p50/p95 per kind, throughput, the server's memory and the machine.

    .venv/bin/python benchmarks/serve_load.py [--requests 40] [--concurrency 8] [--frames 32] [--workers N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "videos"
IMAGES = [EXAMPLES / "real_ffpp_ex_original.png", EXAMPLES / "fake_ffpp_ex_deepfakes.png"]
#: ~10 s clips: the two 12 s 720p examples, and 10 s clips of the shared pool when it is there.
CLIPS = [
    EXAMPLES / "real_ffpp_004.mp4",
    EXAMPLES / "fake_ffpp_NeuralTextures_004_982.mp4",
    SHARED_VIDEOS / "dfdc" / "GipalLee__real.mp4",
    SHARED_VIDEOS / "dfdc" / "GipalLee__fake.mp4",
    SHARED_VIDEOS / "dfdc" / "ayhm23__real.mp4",
    SHARED_VIDEOS / "ffpp-c23" / "Face2Face__750_743.mp4",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args, tmpdir: Path, log) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "fakelens", "serve", "--port", str(port), "--queue", str(args.queue)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    env = dict(os.environ, TMPDIR=str(tmpdir))
    env.pop("FAKELENS_API_TOKEN", None)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server was not ready after 300 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32, help="frames per clip (default 32, the server's default)")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: the server's)")
    parser.add_argument("--queue", type=int, default=16)
    args = parser.parse_args()

    clips = [p for p in CLIPS if p.is_file()]
    files = {"image": IMAGES, "clip": clips}
    plan = [("image", IMAGES[i // 2 % len(IMAGES)]) if i % 2 == 0 else ("clip", clips[i // 2 % len(clips)]) for i in range(args.requests)]

    # Baseline: the library, one file at a time, in this process (before the server competes for the cores).
    from fakelens import Detector

    detector = Detector.default()
    library: dict[str, list[float]] = {"image": [], "clip": []}
    expected: dict[Path, float | None] = {}
    for kind, paths in files.items():
        for path in paths:
            detector.predict(path, num_frames=args.frames)  # warm
            started = time.perf_counter()
            expected[path] = detector.predict(path, num_frames=args.frames).score
            library[kind].append(time.perf_counter() - started)
    del detector

    tmpdir = Path(tempfile.mkdtemp(prefix="serve-load-"))
    log = open(tmpdir / "server.log", "wb")
    server_tmp = tmpdir / "tmp"
    server_tmp.mkdir()
    process, url = start_server(args, server_tmp, log)
    try:
        client = httpx.Client(base_url=url, timeout=600)
        ready = client.get("/readyz").json()
        model = client.get("/v1/model").json()
        for paths in files.values():  # warm each worker's code paths
            for _ in range(ready["workers"]):
                client.post("/v1/analyze", files={"file": (paths[0].name, paths[0].read_bytes())}, data={"frames": str(args.frames)})
        baseline_rss = rss_mb(process.pid)
        peak = [baseline_rss]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                peak[0] = max(peak[0], rss_mb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def call(item):
            kind, path = item
            started = time.perf_counter()
            response = client.post("/v1/analyze", files={"file": (path.name, path.read_bytes())}, data={"frames": str(args.frames)})
            return kind, path, response, time.perf_counter() - started

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(call, plan))
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        after_rss = rss_mb(process.pid)
        leftovers = [p for p in (server_tmp).rglob("upload-*") if p.is_file()]
    finally:
        process.terminate()
        process.wait(60)
        log.close()

    statuses: dict[int, int] = {}
    wrong = 0
    latency: dict[str, list[float]] = {"image": [], "clip": []}
    for kind, path, response, seconds in results:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 200:
            latency[kind].append(seconds)
            score = response.json()["score"]
            want = expected[path]
            wrong += not ((score is None and want is None) or (score is not None and want is not None and abs(score - want) <= 1e-5))

    print(f"machine: {describe_machine()}")
    print(
        f"server: fakelens serve --workers {ready['workers']} --queue {args.queue}; model {model['name']} on {model['backend']} ({model['device']})"
    )
    durations = f"{len(clips)} clips of 10-12 s" + ("" if SHARED_VIDEOS.is_dir() else " (no ../shared: examples only)")
    print(
        f"load: {args.requests} requests ({sum(k == 'image' for k, _ in plan)} images, "
        f"{sum(k == 'clip' for k, _ in plan)} clips; {durations}; {args.frames} frames per clip) "
        f"from {args.concurrency} concurrent clients"
    )
    print(f"{'kind':6} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}   {'library, one at a time: median s':>32}")
    for kind in ("image", "clip"):
        values = latency[kind]
        if values:
            print(
                f"{kind:6} {len(values):>3} {percentile(values, 50):>7.2f} {percentile(values, 95):>7.2f} "
                f"{max(values):>7.2f}   {statistics.median(library[kind]):>32.2f}"
            )
    done = sum(len(v) for v in latency.values())
    serial = sum(statistics.median(library[k]) * len(v) for k, v in latency.items() if v)
    print(
        f"throughput: {done / wall:.2f} requests/s ({done} in {wall:.1f} s; the same files one at a time "
        f"through the library: {serial:.1f} s, {serial / wall:.2f}x)"
    )
    print(f"statuses: {dict(sorted(statuses.items()))}; scores equal to the library's: {done - wrong}/{done}")
    print(f"server RSS: {baseline_rss:.0f} MB warm, {peak[0]:.0f} MB peak, {after_rss:.0f} MB after; uploads left in its TMPDIR: {len(leftovers)}")
    shutil.rmtree(tmpdir, ignore_errors=True)
    return 0 if statuses.get(200, 0) == args.requests and not wrong and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
