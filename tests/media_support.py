"""Real media made in tests: frames encoded with PyAV, the same library fakelens decodes with."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def encode_clip(
    path: Path,
    frames: list[np.ndarray],
    codec: str = "libx264",
    rate: int = 10,
    rotation: int | None = None,
    fmt: str | None = None,
    options: dict | None = None,
) -> Path:
    """Encode real RGB frames into a clip: ``codec`` in container ``fmt`` (default: from the suffix), ``options``
    for the encoder (e.g. ``{"crf": "18"}``), display ``rotation`` in degrees."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if options:
            stream.options = options
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
