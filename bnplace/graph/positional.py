"""Which ``nn.Sequential`` children a module's own Python code uses by position.

A forward that does not trace keeps running as Python after a rewrite. When it slices or indexes
a Sequential (``self.features[:4](x)``, VGG perceptual losses) or iterates it, inserting or
removing a BatchNorm there, or replacing it by a GraphModule, would change which layers that code
picks; such a Sequential must stay as it is.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from torch import nn


# nn.Module methods that do not pick a Sequential's layers by position (AveragedModel's
# ``self.module.parameters()``); the ones listing its children or modules in order still count.
_POSITION_FREE = frozenset(name for name in dir(nn.Module) if not name.startswith("_")) - {
    "children", "named_children", "modules", "named_modules"}


def positionally_used(module: nn.Module) -> set[str]:
    """Names of ``module``'s Sequential children that its methods use other than by calling."""
    names = _non_call_uses(type(module))
    return {name for name in names
            if isinstance(getattr(module, name, None), nn.Sequential)}


@functools.lru_cache(maxsize=None)
def _non_call_uses(cls: type) -> frozenset[str]:
    """``X`` for each ``self.X`` in ``cls``'s methods (``__init__`` aside) that is not called,
    nor only asked for one of its position-free module methods (``self.X.parameters()``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source (a builtin, a REPL class): assume none
        return frozenset()
    used: set[str] = set()
    for method in ast.walk(tree):
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                or method.name == "__init__" or not method.args.args:
            continue
        owner = method.args.args[0].arg
        called = {id(node.func) for node in ast.walk(method) if isinstance(node, ast.Call)}
        called |= {id(node.value) for node in ast.walk(method)
                   if isinstance(node, ast.Attribute) and node.attr in _POSITION_FREE}
        for node in ast.walk(method):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == owner and id(node) not in called:
                used.add(node.attr)
    return frozenset(used)
