"""fakelens: a lightweight, explainable deepfake detector for face videos and images.

Data flows one way: media -> frames -> faces -> crops -> model -> scores -> report.
Each stage is a module: ``media``, ``mtcnn``, ``faces``, ``model``, ``detector``, ``explain``.
"""

from fakelens.errors import FakelensError, MediaError

__version__ = "0.1.0"

__all__ = ["FakelensError", "MediaError", "__version__"]
