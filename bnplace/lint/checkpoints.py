"""Whether a source loads saved weights into its models (``net.load_state_dict(...)``,
``model.load_weights(...)``, Lightning's ``Net.load_from_checkpoint(...)``).

Weights are saved per parameter: a fix that takes a parameter away (BNP002's ``bias=False``)
makes a checkpoint saved before it no longer load (``Unexpected key(s) in state_dict:
"0.bias"``, or a Keras layer given more weights than it has). Loading in another file is not
seen.
"""

from __future__ import annotations

import re

import libcst as cst
import libcst.matchers as m

_LOADERS = ("load_state_dict", "load_weights", "load_from_checkpoint")
# The text pre-filter: most files never name a loader and are not walked again.
_NAMES_LOADER = re.compile(rf"\b(?:{'|'.join(_LOADERS)})\b")
_LOADER_CALL = m.Call(func=m.Attribute(attr=m.OneOf(*(m.Name(name) for name in _LOADERS))))


def loads_weights(module: cst.Module, code: str) -> bool:
    """Whether ``module`` (parsed from ``code``) calls a weight loader; a loader named only in a
    comment or a string does not count."""
    return _NAMES_LOADER.search(code) is not None and bool(m.findall(module, _LOADER_CALL))
