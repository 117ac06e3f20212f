"""fakelens.explain, on its way to a package (issue #14): the old module, moved to core.py unchanged."""

from fakelens.explain.core import *  # noqa: F401,F403
from fakelens.explain.core import __all__  # noqa: F401
