"""Whether a source reads a layer's bias (``nn.init.zeros_(m.bias)``, ``conv.bias.data.zero_()``,
``layer.bias.assign(...)``).

BNP002's fix (``bias=False`` / ``use_bias=False``) leaves such a layer's ``bias`` None, and the
read then fails (``AttributeError: 'NoneType' object has no attribute 'zero_'``). The reader is
often a loop over all modules (``for m in self.modules():``), so which layer it reads is not
known: a read anywhere in the file counts, unless the file tests a bias against None
(torchvision's ``if m.bias is not None:``) and so handles a layer without one. A module's own
``self.bias`` is its parameter, not a layer's.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

_BIAS = m.Attribute(value=~m.Name("self"), attr=m.Name("bias"))
_NONE_TEST = m.Comparison(left=_BIAS, comparisons=[
    m.ComparisonTarget(operator=m.Is() | m.IsNot(), comparator=m.Name("None"))])


def reads_bias(module: cst.Module, code: str) -> bool:
    """Whether ``module`` (parsed from ``code``) reads a layer's ``.bias`` without ever testing
    one against None; a name only in a comment or a string does not count."""
    if ".bias" not in code:
        return False
    return bool(m.findall(module, _BIAS)) and not m.findall(module, _NONE_TEST)
