"""Stage 2: frames -> faces. The MTCNN cascade (Zhang et al. 2016) in PyTorch, batched for speed.

Three small networks run one after the other:

* **P-Net** slides over an image pyramid and proposes candidate face windows,
* **R-Net** re-scores 24x24 crops of the candidates and refines their boxes,
* **O-Net** re-scores 48x48 crops, refines the boxes again and places five landmarks.

The weights are the original ones, as shipped in the PyPI package ``mtcnn`` (Keras arrays in
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``). We read those files through ``importlib.metadata``
and never import ``mtcnn`` itself, which needs TensorFlow. The arithmetic follows facenet-pytorch 2.6
(same weights, same pyramid, same box rounding), so both give the same faces; see
``benchmarks/mtcnn_reference.py`` for the measured agreement and speed.

What makes it fast (about 2.3x facenet-pytorch on a CPU, with the same detections; the benchmark has
the numbers):

* one summed-area table per frame serves every pyramid level and every R-Net/O-Net crop: each output
  pixel is a box sum read from four table corners, exactly what ``interpolate(mode="area")`` gives,
  at a cost that follows the output's size (facenet-pytorch resizes the whole frame per level, and
  each candidate box in a Python loop);
* frames of one size are stacked; R-Net and O-Net each see the candidates of all frames together;
* on a CPU, every network call is kept cache-sized (P-Net a frame or a few per level, R-Net 256 crops,
  O-Net 32), channels-last, with the input normalisation folded into the first convolution: one call
  on thousands of crops runs about twice slower than the same work in small calls;
* an optional ``detection_size`` caps the resolution the cascade sees, so 1080p or 4K frames cost
  about what a 640 px frame does; ``min_face_size`` is the main speed knob (P-Net's work grows as
  its inverse square).

==========================  ====================================================================
:mod:`~.nets`               :class:`PNet`, :class:`RNet`, :class:`ONet`, the weights (:func:`find_weights`,
                            :func:`load_network`) and the input normalisation folded into conv1
:mod:`~.pyramid`            the pyramid scales and every area resize, from one summed-area table per frame
:mod:`~.boxes`              box squaring and regression, R-Net/O-Net crop windows, the last NMS
:mod:`~.detector`           :class:`MTCNN` (input checks, frame batching, the three stages) and :class:`Face`
==========================  ====================================================================

Every public name is importable from ``fakelens.mtcnn`` itself.
"""

from __future__ import annotations

from fakelens.mtcnn.detector import LANDMARK_NAMES, MTCNN, Face
from fakelens.mtcnn.nets import ONet, PNet, RNet, find_weights, load_network

__all__ = ["Face", "MTCNN", "PNet", "RNet", "ONet", "find_weights", "load_network", "LANDMARK_NAMES"]
