"""The stages of :meth:`fakelens.detector.Detector.predict` overlapped: decode, find faces and score at once.

Run one after the other, decoding, face finding and scoring keep one core busy while the other waits.
Here threads share the work, joined by bounded queues:

* the **decoder** opens each input in turn, decodes its sampled frames (:func:`fakelens.media.iter_video`),
  then goes on to the next input, so in a folder the next file decodes while this one's faces are found;
* the **face finders** (:func:`face_threads`: one on a 2-core machine, in the caller's thread; one per core
  beyond the first on bigger ones, up to 4) each take a batch of frames, downscale each once for the detector
  (:func:`fakelens.faces.detect_faces`), find its faces and crop every face that will be scored (crops do not
  depend on the track a face ends in); the caller collects batches in order. Decoding is the slower stage, so
  the downscaling is the face finder's: moved there from the decoder it took 3-5 % off the 1080p clip of
  ``benchmarks/pipeline_speed.py`` and about 4 % off the 10 s 720p one (3 runs of 8 alternated pairs);
* the **scorer** (one worker) classifies each batch of crops as it arrives;
* once every frame of an input is in, the sequential path's **second look** (:func:`fakelens.second_look.second_look`)
  runs on them in the caller's thread, and only frames whose faces it changes are cropped and scored again.

PyAV, OpenCV, torch and ONNX Runtime release the GIL while they work, so the threads run on separate
cores. Where the face finder holds the second of two cores and frames are 720p or smaller, the decoder uses
slice threads only (:func:`decode_threading`): FFmpeg's frame threads shorten decoding alone but cost CPU time
that the face finder then lacks; larger frames keep them, as their decoding is the slower stage.

Batches are the sequential path's (``FaceExtractor.batch_size`` frames), and tracks are linked once every
frame of an input is done, exactly as the sequential path links them, so the crops, and the scores up to ONNX
Runtime's batch-size rounding, are the ones the sequential path gives, whatever the number of face finders
(tests/test_pipeline.py checks it). Timings are the time each stage was busy; ``total`` is the wall time from
the first frame asked for to the verdict, so it is less than their sum.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakelens.errors import FakelensError
from fakelens.faces import FaceCrop, detect_faces, score_floor, scored_crops
from fakelens.media import Frame, SamplingPlan, iter_video, load_frames, media_kind, plan_sampling
from fakelens.sysinfo import available_cores

#: Decoded frames the decoder may hold ahead of the face finder, per input. Two detection batches: enough to
#: keep both busy, while bounding memory (16 frames of 1080p are 100 MB).
QUEUE_FRAMES = 16
_END = object()
#: Most face-finder threads :func:`face_threads` picks: each holds a batch of frames, and past 4 the decoder
#: (one stream at a time) cannot keep them fed.
MAX_FACE_THREADS = 4


def face_threads(cores: int | None = None) -> int:
    """Face-finder threads for ``cores`` (default: :func:`fakelens.sysinfo.available_cores`): one core is left
    to the decoder and the scorer, the rest find faces, 1 to :data:`MAX_FACE_THREADS`."""
    cores = available_cores() if cores is None else cores
    return max(1, min(MAX_FACE_THREADS, cores - 1))


#: Frames up to this many pixels (720p and below) decode on slice threads only beside a busy face finder on 2 cores.
SLICE_MAX_PIXELS = 1280 * 720


def decode_threading(pixels: int, cores: int | None = None) -> str:
    """How the decoder threads FFmpeg for frames of ``pixels`` pixels (see :data:`fakelens.media.DECODE_THREADING`).

    ``"SLICE"`` on 1 core, and on 2 cores for frames up to :data:`SLICE_MAX_PIXELS`: the face finder holds the
    other core, and frame threads would take CPU time from it. ``"AUTO"`` for larger frames, whose decoding is the
    slower stage and needs the frame threads, and wherever cores are to spare. Measured with the two ways
    alternated (8 runs each, medians of paired ratios): slice threads took 9 % and 5 % off the two 720p clips
    of ``benchmarks/pipeline_speed.py`` and added 7 % to the 1080p one."""
    cores = available_cores() if cores is None else cores
    # On 1 core, frame threads would only share it.
    return "SLICE" if cores == 1 or (cores == 2 and pixels <= SLICE_MAX_PIXELS) else "AUTO"


@dataclass
class Opened:
    """What the decoder says about one input before its frames: its kind, name and sampling plan."""

    kind: str
    name: str
    plan: SamplingPlan | None
    decode_seconds: list[float] = field(default_factory=lambda: [0.0])


class Decoder(threading.Thread):
    """Decodes ``sources`` one after another into one bounded queue each: an :class:`Opened` (or the
    exception that stopped the input), its :class:`Frame` objects, then an end marker."""

    def __init__(
        self,
        sources: Sequence[str | Path],
        num_frames: int,
        keyframes: str,
        cores: int | None = None,
    ):
        super().__init__(name="fakelens-decoder", daemon=True)
        self.sources = list(sources)
        self.cores = available_cores() if cores is None else cores
        self.num_frames = num_frames
        self.keyframes = keyframes
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=QUEUE_FRAMES) for _ in self.sources]
        self.stopped = threading.Event()

    def run(self) -> None:
        for source, out in zip(self.sources, self.queues):
            if not self._decode(source, out):
                return

    def _decode(self, source: str | Path, out: queue.Queue) -> bool:
        opened = None
        try:
            start = time.perf_counter()
            kind = media_kind(source)
            plan = plan_sampling(source, self.num_frames, self.keyframes) if kind == "video" else None
            opened = Opened(kind, str(source), plan)
            opened.decode_seconds[0] = time.perf_counter() - start
            if not self._put(out, opened):
                return False
            if plan is not None:
                threads = decode_threading(plan.info.width * plan.info.height, self.cores)
                frames = iter_video(source, plan, threads)
            else:
                frames = iter(load_frames(source, kind="image"))
            while True:
                start = time.perf_counter()
                frame = next(frames, None)
                opened.decode_seconds[0] += time.perf_counter() - start
                if frame is None:
                    break
                if not self._put(out, frame):
                    return False
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it in its own thread
            return self._put(out, exc)
        return self._put(out, _END)

    def _put(self, out: queue.Queue, item) -> bool:
        """Put ``item``, waiting for room; False when the consumer has stopped (then the thread ends)."""
        while not self.stopped.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        self.stopped.set()


def _take(source: queue.Queue):
    item = source.get()
    if item is _END or isinstance(item, BaseException):
        source.ended = True  # type: ignore[attr-defined]  # nothing more will come: see _drain
    if isinstance(item, BaseException):
        raise item
    return item


def _take_batch(items: queue.Queue, size: int) -> tuple[list[Frame], bool]:
    """The next ``size`` decoded frames (fewer at the input's end), and whether the input ended."""
    batch: list[Frame] = []
    while len(batch) < size:
        item = _take(items)
        if item is _END:
            return batch, True
        batch.append(item)
    return batch, False


def run_input(
    detector, items: queue.Queue, scorer: ThreadPoolExecutor, report, finders: ThreadPoolExecutor | None = None
) -> tuple[Opened, list[Frame], list[FaceCrop], np.ndarray, dict]:
    """Faces and scores of one input whose decoded frames arrive on ``items`` (see :class:`Decoder`).

    Batches of frames go to ``finders`` (or are worked in this thread when None) and are collected in order.
    Returns what :meth:`Detector._result` needs: the input's description, its frames, its crops (frame
    order, then track order, as the sequential path orders them), their scores and the stage timings.
    """
    start = time.perf_counter()
    opened: Opened = _take(items)
    extractor = detector.faces
    frames: list[Frame] = []
    raw_per_frame: list = []  # every face found, before FaceExtractor.select
    faces_per_frame: list = []
    pending: list[tuple[int, FaceCrop]] = []  # (face's place in its frame, crop), in frame order
    futures: list[Future] = []
    timings = {"faces": 0.0, "classify": 0.0, "wait": 0.0}

    def classify(batch: np.ndarray) -> np.ndarray:
        begin = time.perf_counter()
        scores = detector.classify(batch)
        timings["classify"] += time.perf_counter() - begin
        return scores

    def find(batch: list[Frame]):
        """Faces of a batch of frames, and the crops of those that will be scored (in a face-finder thread)."""
        begin = time.perf_counter()
        found = detect_faces(extractor.detector, [frame.image for frame in batch])
        out = []
        for frame, raw, faces in zip(batch, found, extractor.select(found)):
            out.append((frame, raw, faces, crops_to_score(frame, faces)))
        return out, time.perf_counter() - begin

    def crops_to_score(frame: Frame, faces) -> list[tuple[int, FaceCrop]]:
        return [(place, extractor.crop(frame, face, -1)) for place, face in enumerate(faces) if face.prob >= floor]

    def collect(job) -> None:
        out, busy = job.result() if isinstance(job, Future) else job
        timings["faces"] += busy
        crops: list[np.ndarray] = []
        for frame, raw, faces, scored in out:
            frames.append(frame)
            raw_per_frame.append(raw)
            faces_per_frame.append(faces)
            pending.extend(scored)
            crops.extend(crop.image for _, crop in scored)
        if crops:
            futures.append(scorer.submit(classify, np.stack(crops)))

    # Faces under min_face_prob are cropped and scored too when they could be kept (scored_crops decides once tracks are known).
    floor = score_floor(detector.min_face_prob, detector.track_face_prob)
    in_flight: deque[Future] = deque()
    limit = detector.face_threads  # the size of the finders' pool (predict_stream makes it so)
    done = False
    while not done:
        begin = time.perf_counter()
        batch, done = _take_batch(items, extractor.batch_size)
        if done:
            # Reported only now, as the sequential path does: past "reading frames" the file is no longer
            # read (the HTTP API deletes an upload at the next stage), though faces were being found meanwhile.
            report("finding faces", 0.2)
        if batch and finders is None:
            timings["wait"] += time.perf_counter() - begin
            collect(find(batch))
            continue
        if batch and finders is not None:
            in_flight.append(finders.submit(find, batch))
        # Collect in frame order: what is done, and the oldest batch whenever every finder is busy.
        while in_flight and (in_flight[0].done() or len(in_flight) >= limit or done):
            collect(in_flight.popleft())
        timings["wait"] += time.perf_counter() - begin
    report("scoring", 0.6)
    begin = time.perf_counter()
    scores = np.concatenate([f.result() for f in futures]) if futures else np.zeros(0)
    timings["wait"] += time.perf_counter() - begin
    pending, scores, faces_per_frame = _look_again(
        extractor, frames, raw_per_frame, faces_per_frame, pending, scores, crops_to_score, classify, timings
    )

    # Tracks over every face found, kept or not, as FaceExtractor.extract_frames links them; then the crops
    # of faces on a track, in frame order and then track order.
    tracks = extractor.tracks(faces_per_frame)
    by_frame = {frame.index: k for k, frame in enumerate(frames)}
    chosen = []
    for (place, crop), score in zip(pending, scores):
        crop.track = tracks[by_frame[crop.frame_index]][place]
        if crop.track >= 0:
            chosen.append((by_frame[crop.frame_index], crop.track, crop, score))
    chosen.sort(key=lambda item: (item[0], item[1]))
    kept = {id(c) for c in scored_crops([c for _, _, c, _ in chosen], detector.min_face_prob, detector.track_face_prob)}
    chosen = [item for item in chosen if id(item[2]) in kept]
    timings = {"decode": opened.decode_seconds[0], **timings, "total": time.perf_counter() - start}
    return opened, frames, [c for _, _, c, _ in chosen], np.asarray([s for _, _, _, s in chosen], dtype=np.float64), timings


def _look_again(extractor, frames, raw_per_frame, faces_per_frame, pending, scores, crops_to_score, classify, timings):
    """The sequential path's second look (:meth:`fakelens.faces.FaceExtractor.second_look`) once every frame of an
    input is in: frames whose kept faces change get new crops, scored here; the others keep theirs."""
    begin = time.perf_counter()
    looked = extractor.select(extractor.second_look(frames, raw_per_frame))
    redo = {frames[k].index: k for k in range(len(frames)) if looked[k] != faces_per_frame[k]}
    if redo:
        kept = [(p, c, s) for (p, c), s in zip(pending, scores) if c.frame_index not in redo]
        extra = [item for k in redo.values() for item in crops_to_score(frames[k], looked[k])]
        timings["faces"] += time.perf_counter() - begin
        new = classify(np.stack([c.image for _, c in extra])) if extra else np.zeros(0)
        pending = [(p, c) for p, c, _ in kept] + extra
        scores = np.concatenate([np.asarray([s for _, _, s in kept], dtype=np.float64), np.asarray(new, dtype=np.float64)])
    else:
        timings["faces"] += time.perf_counter() - begin
    return pending, scores, looked


def predict_stream(detector, sources: Iterable[str | Path], num_frames: int, finish, report=None) -> Iterator[tuple[Path, object]]:
    """``(source, finish(opened, frames, crops, scores, timings))`` per source, or ``(source, error)``
    for a source that failed with a :class:`FakelensError`, in order, with every stage overlapped."""
    report = report or (lambda stage, fraction: None)
    sources = [Path(s) for s in sources]
    decoder = Decoder(sources, num_frames, detector.keyframes)
    scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fakelens-scorer")
    workers = detector.face_threads
    finders = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fakelens-faces") if workers > 1 else None
    report("reading frames", 0.0)
    decoder.start()
    try:
        for source, items in zip(sources, decoder.queues):
            try:
                result = finish(*run_input(detector, items, scorer, report, finders))
            except FakelensError as exc:
                _drain(items)
                yield source, exc
                continue
            yield source, result
    finally:
        decoder.stop()
        if finders is not None:
            finders.shutdown(wait=True, cancel_futures=True)
        scorer.shutdown(wait=True, cancel_futures=True)
        decoder.join(timeout=5)


def _drain(items: queue.Queue) -> None:
    """Skip the rest of a failed input's queue, so the decoder can go on to the next one."""
    while not getattr(items, "ended", False):
        item = items.get()
        if item is _END or isinstance(item, BaseException):
            return


__all__ = ["Decoder", "predict_stream", "run_input", "face_threads", "decode_threading", "QUEUE_FRAMES", "MAX_FACE_THREADS", "SLICE_MAX_PIXELS"]
