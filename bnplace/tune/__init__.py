"""The tuner: train each BatchNorm placement of a model and find which placement and lr win.

Importing this package sets ``bnplace.tune`` to the package itself, shadowing the function of
the same name that ``bnplace`` exports; the package is therefore made callable, so
``bnplace.tune(model_fn, ...)`` works whichever of the two that attribute holds.
"""

import sys
import types
from typing import Any

from bnplace.tune.api import TuneResult, tune
from bnplace.tune.options import TuneInputError, TuneOptions

__all__ = ["TuneInputError", "TuneOptions", "TuneResult", "tune"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> TuneResult:
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
