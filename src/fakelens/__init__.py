"""fakelens: a lightweight, explainable deepfake detector for face videos and images.

Data flows one way: media -> frames -> faces -> crops -> model -> scores -> report.
Each stage is a module: ``media``, ``mtcnn``, ``faces``, ``model``, ``detector``, ``explain``.
"""

from fakelens.errors import FakelensError, MediaError

__version__ = "0.1.0"

__all__ = ["Detector", "Prediction", "FakelensError", "MediaError", "__version__"]


def __getattr__(name: str):
    # Imported lazily so that `import fakelens` (and the CLI's --help) does not load torch.
    if name in ("Detector", "Prediction"):
        from fakelens import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'fakelens' has no attribute {name!r}")
