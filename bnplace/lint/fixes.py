"""The fixes, as libcst transforms that keep comments and formatting.

A fixable finding carries its layers; their source spans say what to rewrite:

- BNP001: the BatchNorm and the Dropout expressions trade places (list elements, ``model.add``
  arguments, the callees of ``x = Dropout(.5)(x)`` or ``self.bn(self.drop(x))``);
- BNP002: the linear layer's constructor call gets ``bias=False`` (torch) or ``use_bias=False``
  (Keras), replacing an explicit ``True``.

Only the lines a fix changes are rewritten; the rest of the file stays byte for byte as written
(``bnplace.lint.verbatim``).
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Location
from bnplace.lint.layer_calls import argument, bias_parameter
from bnplace.lint.verbatim import merged, normalised

Span = tuple[int, int, int, int]
# What may come before and after a layer on its row for the row's comment to be the layer's:
# brackets (a named pair, ``("drop", nn.Dropout())``, is a tuple without its parentheses), ``,``.
_OPENING = re.compile(r"[\s(\[]*")
_CLOSING = re.compile(r"[\s,)\]]*(#.*)?")


def _span(location: Location) -> Span:
    return (location.row, location.column, location.end_row, location.end_column)


def _range_span(code_range: CodeRange) -> Span:
    return (code_range.start.line, code_range.start.column, code_range.end.line,
            code_range.end.column)


def apply_fixes(code: str, findings: list[Finding]) -> str:
    """``code`` with the fixes of ``findings`` applied; a span touched twice waits a round."""
    swaps: dict[Span, Span] = {}
    no_bias: dict[Span, tuple[int | None, str]] = {}
    for finding in findings:
        if finding.code == "BNP001":
            a, b = (_span(layer.location) for layer in finding.layers)
            if a not in swaps and b not in swaps:
                swaps[a], swaps[b] = b, a
        elif finding.code == "BNP002":
            linear = finding.layers[0]
            no_bias[_span(linear.definition)] = bias_parameter(linear.framework,
                                                               linear.type_name)
    source = normalised(code)
    wrapper = MetadataWrapper(cst.parse_module(source))
    nodes = _NodesAt(set(swaps))
    wrapper.visit(nodes)
    if len(nodes.found) != len(swaps):  # a span that is no single expression: leave it
        swaps = {a: b for a, b in swaps.items() if a in nodes.found and b in nodes.found}
    comments = _travelling_comments(source, swaps, nodes.line_ends)
    fixed = wrapper.visit(_Fixer(swaps, nodes.found, no_bias, comments))
    return merged(code, wrapper.module.code, fixed.code)


def _travelling_comments(source: str, swaps: dict[Span, Span],
                         line_ends: dict[int, cst.TrailingWhitespace]
                         ) -> dict[int, cst.TrailingWhitespace]:
    """The line ends to write on each row once two layers written one per line trade places:
    a layer's end-of-line comment (``nn.Dropout(),  # regularise``) goes with it. Only for a
    layer alone on its rows and a pair on different rows; other comments stay put."""
    rows = source.split("\n")

    def alone(span: Span) -> bool:
        return (_OPENING.fullmatch(rows[span[0] - 1][:span[1]]) is not None
                and span[2] in line_ends
                and _CLOSING.fullmatch(rows[span[2] - 1][span[3]:]) is not None)

    return {a[2]: line_ends[b[2]] for a, b in swaps.items()
            if a[2] != b[2] and alone(a) and alone(b)}


class _NodesAt(cst.CSTVisitor):
    """Finds the expression nodes at given spans (the outermost one, when several share one),
    and the line end (its whitespace and comment) of every row."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, spans: set[Span]) -> None:
        self.spans = spans
        self.found: dict[Span, cst.BaseExpression] = {}
        self.line_ends: dict[int, cst.TrailingWhitespace] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.TrailingWhitespace):
            self.line_ends[self.get_metadata(PositionProvider, node).start.line] = node
        elif isinstance(node, cst.BaseExpression):
            span = _range_span(self.get_metadata(PositionProvider, node))
            if span in self.spans and span not in self.found:
                self.found[span] = node
        return True


class _Fixer(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, swaps: dict[Span, Span], nodes: dict[Span, cst.BaseExpression],
                 no_bias: dict[Span, tuple[int | None, str]],
                 comments: dict[int, cst.TrailingWhitespace]) -> None:
        super().__init__()
        self.swaps, self.nodes, self.no_bias, self.comments = swaps, nodes, no_bias, comments

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
        if isinstance(original, cst.TrailingWhitespace):
            row = self.get_metadata(PositionProvider, original).start.line
            return self.comments.get(row, updated)
        if not isinstance(original, cst.BaseExpression):
            return updated
        span = _range_span(self.get_metadata(PositionProvider, original))
        if span in self.swaps and self.nodes.get(span) is original:
            return self.nodes[self.swaps[span]]
        if span in self.no_bias and isinstance(updated, cst.Call):
            return _without_bias(updated, self.no_bias[span])
        return updated


def _without_bias(call: cst.Call, parameter: tuple[int | None, str]) -> cst.Call:
    """``call`` with its bias switched off: an existing value (by keyword or position) replaced,
    else ``keyword=False`` as a new last argument."""
    false = cst.Name("False")
    args = list(call.args)
    position, keyword = parameter
    given = argument(call, position, keyword)
    for i, arg in enumerate(args):
        if given is not None and arg.value is given:
            args[i] = arg.with_changes(value=false)
            return call.with_changes(args=args)
    new = cst.Arg(value=false, keyword=cst.Name(keyword),
                  equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
    if args:
        last = args[-1]
        spacing: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace(" ")
        if isinstance(last.comma, cst.Comma):  # a trailing comma: one argument per line, as before
            new = new.with_changes(comma=last.comma)
            previous = args[-2].comma if len(args) > 1 else None
            spacing = (previous.whitespace_after if isinstance(previous, cst.Comma)
                       else call.whitespace_before_args)
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=spacing))
    return call.with_changes(args=[*args, new])
