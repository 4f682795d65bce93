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


# Hidden layers kept in ModuleList pairs, built by one constructor call each and walked with zip.
APPENDED_PAIRS = [
    "self.fcs = nn.ModuleList()",
    "self.bns = nn.ModuleList()",
    "for h in dims:",
    "    self.fcs.append(nn.Linear(h, h))",
    "    self.bns.append(nn.BatchNorm1d(h))",
]
COMPREHENDED_PAIRS = [
    "self.fcs = nn.ModuleList([nn.Linear(h, h) for h in dims])",
    "self.bns = nn.ModuleList(nn.BatchNorm1d(h) for h in dims)",
]


@pytest.mark.parametrize(("init", "line"), [(APPENDED_PAIRS, 7), (COMPREHENDED_PAIRS, 4)])
def test_a_linear_walked_with_its_batchnorm_in_a_zip_loop_is_reported_not_fixed(
        init: list[str], line: int) -> None:
    # zip stops at the shorter list: a Linear without a BatchNorm to pair may need its bias.
    source = module_source(init, ["for fc, bn in zip(self.fcs, self.bns):",
                                  "    x = F.relu(bn(fc(x)))",
                                  "return x"])
    assert fixed_at(source) == (source, [("BNP002", line)])


def test_a_dropout_before_the_batchnorm_in_a_zip_loop_is_swapped_where_they_are_called() -> None:
    source = module_source(
        ["self.fcs = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])",
         "self.drops = nn.ModuleList([nn.Dropout(0.3) for _ in range(3)])",
         "self.bns = nn.ModuleList([nn.BatchNorm1d(8) for _ in range(3)])"],
        ["for fc, drop, bn in zip(self.fcs, self.drops, self.bns):",
         "    x = drop(F.relu(fc(x)))",
         "    x = bn(x)",
         "return x"])
    fixed = source.replace("x = drop(F.relu(fc(x)))", "x = bn(F.relu(fc(x)))").replace(
        "    x = bn(x)\n", "    x = drop(x)\n")
    assert code_lines(source) == [("BNP001", 10)]
    assert fixed_at(source) == (fixed, [])


def test_an_enumerated_or_plain_loop_takes_the_items_too() -> None:
    source = module_source(["self.bns = nn.ModuleList([nn.BatchNorm1d(8) for _ in range(2)])",
                            "self.drop = nn.Dropout(0.5)"],
                           ["for i, bn in enumerate(self.bns):",
                            "    x = bn(self.drop(x))",
                            "for bn in self.bns:",
                            "    x = bn(self.drop(x))",
                            "return x"])
    assert code_lines(source) == [("BNP001", 8), ("BNP001", 10)]


UNKNOWN_ITEMS = {
    # the first layer is built apart from the others: which one an item is depends on the run
    "two constructor calls": ["self.fcs = nn.ModuleList([nn.Linear(4, 8)])",
                              "self.fcs.append(nn.Linear(8, 8))",
                              "self.bns = nn.ModuleList([nn.BatchNorm1d(8) for _ in range(2)])"],
    "a list of blocks": ["self.fcs = nn.ModuleList([nn.Sequential(nn.Linear(8, 8)) for _ in dims])",
                         "self.bns = nn.ModuleList([nn.BatchNorm1d(8) for _ in dims])"],
}


@pytest.mark.parametrize("name", sorted(UNKNOWN_ITEMS))
def test_items_of_a_list_built_by_several_calls_are_unknown(name: str) -> None:
    source = module_source(UNKNOWN_ITEMS[name], ["for fc, bn in zip(self.fcs, self.bns):",
                                                 "    x = bn(fc(x))",
                                                 "return x"])
    assert code_lines(source) == []
