"""libcst's scope analysis without its fixed cost per module.

libcst runs a batchable metadata provider by first listing the provider's visitor methods with
``inspect.getmembers``, which reads all of the ~800 attributes of the instance, once per module.
For ``ScopeProvider``, whose one visitor method is ``visit_Module``, that listing took about as
long as the scope analysis of a short model file. The list depends only on the class: here it is
made once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import libcst as cst
from libcst.metadata import ScopeProvider


class Scopes(ScopeProvider):
    """``ScopeProvider``'s metadata (the same ``Scope`` for each node), resolved under this key."""

    _visitor_names: ClassVar[tuple[str, ...] | None] = None

    def get_visitors(self) -> Mapping[str, Callable[[cst.CSTNode], None]]:
        cls = type(self)
        if cls._visitor_names is None:
            cls._visitor_names = tuple(super().get_visitors())
        return {name: getattr(self, name) for name in cls._visitor_names}
