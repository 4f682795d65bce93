"""Round 6 of sources written the way people publish them, PyTorch-centred (a block that returns
its BatchNorm's output with something else, a draft left below a ``return``, hidden layers kept in
``nn.ModuleList`` pairs and walked with ``zip``): the exact findings, and what ``--fix`` leaves."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_lines, fixed_at, module_source

BLOCK_INIT = ["self.drop = nn.Dropout(0.2)", "self.bn = nn.BatchNorm1d(16)"]

# A BatchNorm whose output goes back to the caller inside a tuple, list or dict is still fed by
# the Dropout: the swap is as right there as in a plain ``return``.
RETURNED_WITH_OTHERS = {
    "a tuple": "return self.bn(self.drop(x)), x",
    "a list": "return [x, self.bn(self.drop(x))]",
    "a dict": "return {'feat': self.bn(self.drop(x)), 'raw': x}",
    "a starred tuple": "return (*self.extra(x), self.bn(self.drop(x)))",
}


@pytest.mark.parametrize("name", sorted(RETURNED_WITH_OTHERS))
def test_a_batchnorm_returned_with_other_values_is_followed_and_fixed(name: str) -> None:
    statement = RETURNED_WITH_OTHERS[name]
    source = module_source(BLOCK_INIT, [statement])
    swapped = statement.replace("self.bn(self.drop(x))", "self.drop(self.bn(x))")
    assert code_lines(source) == [("BNP001", 7)]
    assert fixed_at(source) == (source.replace(statement, swapped), [])


def test_a_dropout_output_also_returned_is_reported_not_swapped() -> None:
    # ``h`` is returned too: after a swap the caller would get the BatchNorm's output instead.
    source = module_source(BLOCK_INIT, ["h = self.drop(x)", "return self.bn(h), h"])
    assert fixed_at(source) == (source, [("BNP001", 8)])


def test_an_assigned_tuple_is_followed_too() -> None:
    source = module_source(["self.fc = nn.Linear(8, 16)", "self.bn = nn.BatchNorm1d(16)"],
                           ["pair = (self.bn(self.fc(x)), x)", "return pair"])
    assert code_lines(source) == [("BNP002", 4)]


def test_code_below_a_return_is_never_run() -> None:
    # A draft kept below the ``return``: its layers are no data flow, and the Linear the
    # return reads is not read twice (its bias stays redundant and is fixed).
    source = module_source(
        ["self.fc = nn.Linear(8, 16)", "self.bn = nn.BatchNorm1d(16)",
         "self.drop = nn.Dropout(0.5)", "self.bn2 = nn.BatchNorm1d(16)"],
        ["x = self.bn(self.fc(x))", "return x", "x = self.bn2(self.drop(x))", "return x"])
    assert fixed_at(source) == (
        source.replace("nn.Linear(8, 16)", "nn.Linear(8, 16, bias=False)"), [])


@pytest.mark.parametrize("leave", ["raise StopIteration", "continue", "break"])
def test_code_below_a_raise_continue_or_break_is_never_run(leave: str) -> None:
    source = module_source(BLOCK_INIT, ["for step in range(3):",
                                        "    x = self.drop(x)",
                                        f"    {leave}",
                                        "    x = self.bn(x)",
                                        "return x"])
    assert code_lines(source) == []
