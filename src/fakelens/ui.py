"""The Streamlit app: upload a video or image (or pick a bundled example), see the verdict and why.

Run it with ``fakelens app`` or ``streamlit run app.py`` from a checkout. It is a thin shell over
:class:`fakelens.detector.Detector` and :mod:`fakelens.report`; nothing here decides anything.

Environment:

* ``FAKELENS_CHECKPOINT`` — path of a checkpoint to use instead of the bundled model.
* ``FAKELENS_EXAMPLES`` — folder of example media to offer (default: ``examples/`` of a checkout).
* ``FAKELENS_CACHE`` — where derived files (the ONNX export) are kept; see :mod:`fakelens.backends`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

if __name__ == "__main__":
    # `streamlit run fakelens/ui.py` puts this file's folder first on sys.path, where fakelens' own
    # modules (data, media, metrics, ...) would shadow any top-level module of the same name.
    _here = os.path.realpath(os.path.dirname(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _here]

import streamlit as st

from fakelens.constants import AGGREGATIONS, CAM_METHODS, DEFAULT_CAM_METHOD, DEFAULT_FRAMES, DEFAULT_MAX_UPLOAD_MB
from fakelens.errors import FakelensError, MediaError
from fakelens.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, suffix_kind

log = logging.getLogger(__name__)

#: What the uploader offers: the suffixes fakelens.media reads (the content decides what a file is once uploaded).
VIDEO_UPLOAD_TYPES = tuple(sorted(s.lstrip(".") for s in VIDEO_SUFFIXES))
IMAGE_UPLOAD_TYPES = tuple(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
UPLOAD_TYPES = VIDEO_UPLOAD_TYPES + IMAGE_UPLOAD_TYPES
#: Faces shown per track in the thumbnails.
THUMBNAILS_PER_TRACK = 8
#: Analyses kept per browser session (each holds crops and a few full frames).
KEPT_ANALYSES = 4
MODEL_CARD = Path(__file__).parent / "MODEL_CARD.md"
#: Shown instead of the example buttons where no examples folder is found (an install from a wheel).
NO_EXAMPLES_TEXT = (
    "No example media are installed here: the examples ship with the source repository, not with "
    "the package. Upload a video or an image above, or set FAKELENS_EXAMPLES to a folder of "
    "example media and restart the app."
)
#: The method picker's labels: each method's display name (fakelens.constants.CAM_METHODS), two with a note.
METHOD_NOTES = {"scorecam": " (slow, gradient-free)", "eigencam": " (class-agnostic)"}
METHOD_LABELS = {name: label + METHOD_NOTES.get(name, "") for name, label in CAM_METHODS.items()}
STAGE_TEXT = {
    "reading frames": "Reading frames…",
    "finding faces": "Finding faces…",
    "scoring": "Scoring faces…",
    "drawing frames": "Drawing the frames…",
    "explaining": "Explaining the most suspicious faces…",
    "done": "Done",
}


# --------------------------------------------------------------------------- resources


def checkpoint_path() -> str | None:
    """``$FAKELENS_CHECKPOINT`` when set, else None (the bundled model)."""
    value = os.environ.get("FAKELENS_CHECKPOINT", "").strip()
    return value or None


@st.cache_resource(show_spinner="Loading the model…")
def load_detector(checkpoint: str | None):
    """The detector (loaded once per process and checkpoint) and a lock: explaining is not thread safe."""
    from fakelens.detector import Detector

    detector = Detector.from_checkpoint(checkpoint) if checkpoint else Detector.default()
    return detector, threading.Lock()


def examples_dir() -> Path | None:
    """``$FAKELENS_EXAMPLES``, else ``examples/`` of a source checkout or of the working folder; None if absent."""
    candidates = [os.environ.get("FAKELENS_EXAMPLES", "")]
    candidates += [str(Path(__file__).resolve().parents[2] / "examples"), str(Path.cwd() / "examples")]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and list_examples(Path(candidate)):
            return Path(candidate)
    return None


def list_examples(folder: Path) -> list[Path]:
    supported = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in supported)


def max_upload_mb() -> int:
    """The upload limit in MB: Streamlit's ``server.maxUploadSize`` (set in .streamlit/config.toml or by ``fakelens app``)."""
    try:
        return int(st.get_option("server.maxUploadSize"))
    except Exception:  # noqa: BLE001 - option missing in some embedding: fall back to our own limit
        return DEFAULT_MAX_UPLOAD_MB


# --------------------------------------------------------------------------- analysis


def analyse_bytes(detector, lock, data: bytes, filename: str, settings: dict, progress=None):
    """Write an upload to a temporary file (removed afterwards), check it and analyse it.

    Raises :class:`fakelens.errors.FakelensError` for anything wrong with the file.
    """
    limit = max_upload_mb()
    if len(data) > limit * 1024 * 1024:
        raise MediaError(filename, f"the file is {len(data) / 1024 / 1024:.0f} MB, above the {limit} MB limit")
    suffix = Path(filename).suffix.lower()
    if suffix_kind(filename) is None:  # refused before anything is written
        raise MediaError(filename, f"unsupported file type {suffix or '(none)'!r}; upload one of: {', '.join(UPLOAD_TYPES)}")
    handle = tempfile.NamedTemporaryFile(prefix="fakelens-upload-", suffix=suffix, delete=False)
    try:
        with handle:
            handle.write(data)
        return analyse_path(detector, lock, Path(handle.name), filename, settings, progress)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def analyse_path(detector, lock, path: Path, name: str, settings: dict, progress=None):
    from fakelens.report import analyse

    with lock:
        try:
            return analyse(
                detector,
                path,
                name=name,
                num_frames=settings["frames"],
                threshold=settings["threshold"],
                aggregate=settings["aggregate"],
                # No heatmaps yet: the page shows the verdict as soon as the scores exist, and
                # show_explanations computes the maps for the faces it shows (a spinner meanwhile).
                method=None,
                top_k=settings["top_k"],
                progress=progress,
            )
        except MediaError as exc:
            # The temporary file's name means nothing to the person who uploaded it (decoders quote it too).
            raise MediaError(name, exc.reason.replace(str(path), name)) from None


def _remember(key: tuple, value) -> None:
    store = st.session_state.setdefault("analyses", {})
    store.pop(key, None)
    store[key] = value
    while len(store) > KEPT_ANALYSES:
        store.pop(next(iter(store)))


def run_analysis(detector, lock, key: tuple, name: str, settings: dict, data: bytes | None = None, path: Path | None = None):
    """Analyse once per (input, settings) with a progress display; the outcome is kept in session state."""
    store = st.session_state.setdefault("analyses", {})
    if key in store:
        return store[key]
    started = time.perf_counter()
    with st.status(f"Analysing {name}…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")

        def progress(stage: str, fraction: float) -> None:
            bar.progress(min(1.0, max(0.0, fraction)), text=STAGE_TEXT.get(stage, stage))

        try:
            if data is not None:
                outcome = analyse_bytes(detector, lock, data, name, settings, progress)
            else:
                outcome = analyse_path(detector, lock, path, name, settings, progress)
            status.update(label=f"Analysed {name} in {time.perf_counter() - started:.1f} s", state="complete", expanded=False)
        except FakelensError as exc:
            outcome = exc
            status.update(label=f"Could not analyse {name}", state="error", expanded=False)
        except Exception as exc:  # never show a traceback to the person using the app
            log.exception("analysis of %s failed", name)
            outcome = FakelensError(f"unexpected error while analysing {name}: {type(exc).__name__}: {exc}")
            status.update(label=f"Could not analyse {name}", state="error", expanded=False)
    _remember(key, outcome)
    return outcome


# --------------------------------------------------------------------------- page parts


def sidebar(detector) -> dict:
    from fakelens.explain import Explainer

    st.sidebar.header("Settings")
    frames = st.sidebar.number_input(
        "Frames to sample (videos)",
        min_value=1,
        max_value=128,
        value=DEFAULT_FRAMES,
        step=1,
        key="frames",
        help="Frames spread evenly over the video. More frames: steadier verdicts, slower analysis.",
    )
    default = min(0.99, max(0.01, round(float(detector.threshold), 2)))
    threshold = st.sidebar.slider(
        "Threshold on P(fake)",
        min_value=0.01,
        max_value=0.99,
        value=default,
        step=0.01,
        key="threshold",
        help=f"FAKE when a face track's P(fake) reaches it. The model's own: {detector.threshold:.3f}, chosen on validation data.",
    )
    aggregate = st.sidebar.selectbox(
        "Aggregation over frames",
        list(AGGREGATIONS),
        index=list(AGGREGATIONS).index(detector.aggregate),
        key="aggregate",
        help="How a face track's frame scores make one score: their mean, or 'confident' (the DFDC winner's: "
        "average the confident frames when there are enough of them).",
    )
    methods = Explainer.methods()
    method = st.sidebar.selectbox(
        "Explanation method",
        methods,
        index=methods.index(DEFAULT_CAM_METHOD) if DEFAULT_CAM_METHOD in methods else 0,
        format_func=lambda m: METHOD_LABELS.get(m, m),
        key="method",
        help="Which class-activation map colours the regions behind the score. Switching recomputes the maps only.",
    )
    top_k = st.sidebar.slider(
        "Faces to explain",
        min_value=1,
        max_value=8,
        value=4,
        key="top_k",
        help="The most suspicious faces get a heatmap (each costs a few model passes).",
    )
    # At its default the slider stands for the model's own threshold, unrounded, so that the app and
    # `fakelens predict` agree even for a score between the two.
    exact = float(detector.threshold) if abs(threshold - default) < 1e-9 else float(threshold)
    return {"frames": int(frames), "threshold": exact, "aggregate": aggregate, "method": method, "top_k": int(top_k)}


def model_panel(detector, checkpoint: str | None) -> None:
    with st.expander("About the model", expanded=False):
        info = detector.info
        source = checkpoint or "bundled default (fakelens/weights/default.pt)"
        st.markdown(
            f"**{detector.name}** — MobileNetV2 classifier on MTCNN face crops, running on "
            f"`{detector.classify.name}`.  \nCheckpoint: `{source}`  \nDecision threshold: "
            f"{detector.threshold:.3f}"
        )
        if info.get("metrics"):
            st.markdown("Measured results stored in the checkpoint:")
            st.json(info["metrics"], expanded=False)
        if MODEL_CARD.is_file():
            st.markdown(MODEL_CARD.read_text(encoding="utf-8"))
        else:
            st.caption("No model card is installed (fakelens/MODEL_CARD.md).")


def choose_input(limit_mb: int):
    """The upload widget and the example buttons; returns ("upload", UploadedFile) / ("example", Path) / None."""

    def on_upload() -> None:
        st.session_state["source"] = "upload"

    def on_example(name: str) -> None:
        st.session_state["source"] = f"example:{name}"

    folder = examples_dir()
    left, right = st.columns([3, 2]) if folder else (st.container(), None)
    with left:
        uploaded = st.file_uploader(
            f"Upload a video ({', '.join(VIDEO_UPLOAD_TYPES)}) or an image ({', '.join(IMAGE_UPLOAD_TYPES)}), up to {limit_mb} MB",
            type=list(UPLOAD_TYPES),
            key="upload",
            on_change=on_upload,
        )
        if folder is None:
            st.info(NO_EXAMPLES_TEXT)
    examples = list_examples(folder) if folder else []
    if right is not None:
        with right:
            st.markdown("**…or try an example**")
            for example in examples:
                st.button(example.name, key=f"example:{example.name}", on_click=on_example, args=(example.name,), width="stretch")
    source = st.session_state.get("source")
    if source == "upload" or (source is None and uploaded is not None):
        return ("upload", uploaded) if uploaded is not None else None
    if source and source.startswith("example:"):
        by_name = {p.name: p for p in examples}
        chosen = by_name.get(source.removeprefix("example:"))
        return ("example", chosen) if chosen else None
    return None


def show_verdict(prediction) -> None:
    colours = {"FAKE": "red", "REAL": "green", "NO_FACE": "gray"}
    words = {"FAKE": "FAKE", "REAL": "REAL", "NO_FACE": "no face found"}
    st.markdown(f"## Verdict: :{colours[prediction.label]}[{words[prediction.label]}]")
    st.caption(f"{prediction.source} · {prediction.kind} · model {prediction.model} ({prediction.backend})")
    if prediction.label == "NO_FACE":
        st.warning(
            f"No face was found in the {prediction.frames} frame(s) examined. fakelens judges faces only; "
            "try a clip where a face is visible, larger and frontal, or sample more frames."
        )
        return
    cols = st.columns(4)
    cols[0].metric("P(fake)", f"{prediction.score:.3f}", help="Of the most suspicious face track.")
    cols[1].metric("Threshold", f"{prediction.threshold:.3g}")
    cols[2].metric(
        "Certainty",
        f"{prediction.confidence:.0%}",
        help="How far P(fake) is from the threshold: 0% on it, 100% at 0 or 1. Not a calibrated probability.",
    )
    cols[3].metric("Faces / frames", f"{prediction.num_faces} / {prediction.frames}")
    follows = "the most suspicious of the face tracks" if len(prediction.tracks) > 1 else "the only face track"
    st.caption(
        f"The verdict follows {follows} (face {prediction.track}), frame scores aggregated by "
        f"**{prediction.aggregate}**. Reading, detection and scoring took {prediction.timings.get('total', 0.0):.1f} s."
    )


def show_timeline(prediction) -> None:
    import altair as alt
    import pandas as pd

    from fakelens.report import timeline_rows

    st.subheader("Score over time")
    data = pd.DataFrame(timeline_rows(prediction))
    base = alt.Chart(data).encode(
        x=alt.X("timestamp:Q", title="time (s)"),
        y=alt.Y("score:Q", title="P(fake)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("track:N", title="track"),
        tooltip=["track", "frame_index", "timestamp", alt.Tooltip("score:Q", format=".3f")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [prediction.threshold]})).mark_rule(color="red", strokeDash=[6, 4]).encode(y="threshold:Q")
    st.altair_chart(base.mark_line(point=True) + rule, width="stretch")
    st.caption(f"Each point is one face in one sampled frame; the dashed line is the threshold ({prediction.threshold:.2f}).")


def show_explanations(analysis, detector, lock, method: str) -> None:
    from fakelens.explain import ExplainError
    from fakelens.report import explanation_target

    prediction = analysis.prediction
    target = explanation_target(prediction).upper()
    st.subheader("Why: the most suspicious faces")
    if method not in analysis.heatmaps:
        with st.spinner(f"Computing {METHOD_LABELS.get(method, method)}…"):
            try:
                with lock:
                    analysis.explain(detector, method)
            except (ExplainError, ValueError) as exc:
                st.warning(f"No explanation available: {exc}")
                return
    st.caption(
        f"{METHOD_LABELS.get(method, method)} heatmaps: red marks the regions that pushed the model towards "
        f"{target}, blue the regions that did not matter. They show where the model looked, not proof of editing."
    )
    for position, index in enumerate(analysis.suspicious):
        face = prediction.faces[index]
        left, middle, right = st.columns([2, 1, 1])
        title = f"frame {face.frame_index} · t={face.timestamp:.2f} s · face {face.track} · P(fake) {face.score:.3f}"
        full = analysis.frame_overlay(position, method)
        if full is not None:
            left.image(full, caption=f"{title} — heatmap on the frame", width="stretch")
        middle.image(face.crop, caption="face crop", width="stretch")
        right.image(analysis.crop_overlay(position, method), caption=f"{METHOD_LABELS.get(method, method)} overlay", width="stretch")


def show_faces(prediction) -> None:
    from fakelens.report import faces_per_track

    st.subheader("Faces found")
    scores = {t.track: t for t in prediction.tracks}
    for track, indices in faces_per_track(prediction, THUMBNAILS_PER_TRACK).items():
        summary = scores[track]
        st.markdown(f"**Face {track}** — P(fake) {summary.score:.3f} over {summary.faces} frame(s)")
        faces = [prediction.faces[i] for i in indices]
        st.image([f.crop for f in faces], caption=[f"t={f.timestamp:.2f}s · {f.score:.2f}" for f in faces], width=112)


def show_downloads(analysis) -> None:
    from fakelens.report import png_bytes, to_csv, to_json

    prediction = analysis.prediction
    stem = Path(prediction.source).stem or "fakelens"
    st.subheader("Report")
    cols = st.columns(3)
    cols[0].download_button("JSON report", to_json(prediction), file_name=f"{stem}.fakelens.json", mime="application/json", width="stretch")
    cols[1].download_button("CSV (a row per face)", to_csv(prediction), file_name=f"{stem}.fakelens.csv", mime="text/csv", width="stretch")
    if analysis.sheet is not None:
        cols[2].download_button(
            "Annotated frames (PNG)", png_bytes(analysis.sheet), file_name=f"{stem}.fakelens.png", mime="image/png", width="stretch"
        )


def show_result(analysis, detector, lock, method: str) -> None:
    prediction = analysis.prediction
    show_verdict(prediction)
    if prediction.label == "NO_FACE":
        show_downloads(analysis)
        return
    if prediction.kind == "video":
        show_timeline(prediction)
    show_explanations(analysis, detector, lock, method)
    show_faces(prediction)
    if analysis.sheet is not None:
        with st.expander("Annotated frames", expanded=False):
            st.image(analysis.sheet, caption="Faces boxed red at or above the threshold, green below.", width="stretch")
    show_downloads(analysis)


# --------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="fakelens — deepfake check", page_icon="🔎", layout="wide")
    st.title("fakelens")
    st.markdown("Is the face in this video or photo real or a deepfake? Upload a file to see the model's verdict and the regions it looked at.")
    checkpoint = checkpoint_path()
    try:
        detector, lock = load_detector(checkpoint)
    except FakelensError as exc:
        st.error(
            f"The model could not be loaded: {exc}. Set FAKELENS_CHECKPOINT to a checkpoint written by "
            "`fakelens train`, or reinstall fakelens to restore the bundled model."
        )
        st.stop()
    settings = sidebar(detector)
    model_panel(detector, checkpoint)
    limit_mb = max_upload_mb()
    chosen = choose_input(limit_mb)
    if chosen is None:
        st.info("Choose a file to analyse. Nothing is kept after the analysis: uploads are deleted once read.")
        return
    # The explanation method is left out of the key: switching it recomputes the heatmaps only.
    options = (settings["frames"], round(settings["threshold"], 4), settings["aggregate"], settings["top_k"])
    kind, value = chosen
    if kind == "upload":
        if value.size > limit_mb * 1024 * 1024:
            st.error(f"{value.name} is {value.size / 1024 / 1024:.0f} MB, above the {limit_mb} MB upload limit.")
            return
        data = value.getvalue()
        key = ("upload", hashlib.sha256(data).hexdigest(), value.name, *options)
        outcome = run_analysis(detector, lock, key, value.name, settings, data=data)
    else:
        key = ("example", str(value), value.stat().st_mtime_ns, *options)
        outcome = run_analysis(detector, lock, key, value.name, settings, path=value)
    if isinstance(outcome, FakelensError):
        reason = getattr(outcome, "reason", None) or str(outcome)
        st.error(f"Could not analyse {value.name}: {reason}")
        return
    show_result(outcome, detector, lock, settings["method"])


if __name__ == "__main__":  # `streamlit run fakelens/ui.py`, as `fakelens app` does
    main()
