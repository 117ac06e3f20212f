"""Where the tests find the shared media pool and weights: ``../shared`` beside the repository.

``FAKELENS_SHARED`` overrides it: a folder to use instead, or ``none`` to run as a user's clone does,
with no shared data at all (tests that need it skip; fixtures fall back to what the clone ships).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shared() -> Path | None:
    value = os.environ.get("FAKELENS_SHARED", "").strip()
    if not value:
        return ROOT.parent / "shared"
    if value.lower() in ("none", "off", "0", "no"):
        return None
    return Path(value).expanduser().resolve()


#: The shared folder, or None when FAKELENS_SHARED=none.
SHARED = _shared()
#: Where nothing is: paths under it never exist, so "is the file there?" checks answer no (and skip
#: reasons that name the path say why).
_ABSENT = Path("/FAKELENS_SHARED=none")
SHARED_DATA = (SHARED or _ABSENT) / "data"
IMAGENET_WEIGHTS = (SHARED or _ABSENT) / "weights" / "mobilenet_v2_imagenet.pth"
