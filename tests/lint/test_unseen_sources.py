"""Sources written the way people publish them, where a careless reading reports the wrong thing
or, worse, fixes it into different code: the exact findings, and what ``--fix`` leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from tests.lint.helpers import code_lines, module_source


def fixed(source: str) -> tuple[str, list[tuple[str, int]]]:
    """The fixed source and the (code, line) findings left in it."""
    path = Path("model.py")
    result = lint_file(SourceFile(path, source), Settings().enabled_for(path), fix=True)
    return result.text, [(f.code, f.location.row) for f in result.findings]


# A BatchNorm that the code may leave out: reported, never fixed (the bias is needed without it).
GUARDED = {
    "keras model.add under if": (
        "model = Sequential()\n"
        "model.add(Dense(64))\n"
        "if batch_norm:\n"
        "    model.add(BatchNormalization())\n", 2),
    "torch list append under if": (
        "layers = [nn.Conv2d(3, 16, 3)]\n"
        "if use_bn:\n"
        "    layers.append(nn.BatchNorm2d(16))\n"
        "net = nn.Sequential(*layers)\n", 1),
    "functional under if": (
        "x = Dense(32)(inp)\n"
        "if bn:\n"
        "    x = BatchNormalization()(x)\n"
        "x = Activation('relu')(x)\n", 1),
    "module chosen by a conditional expression": (
        "class Net(nn.Module):\n"
        "    def __init__(self, use_bn):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.bn = nn.BatchNorm2d(8) if use_bn else nn.Identity()\n"
        "    def forward(self, x):\n"
        "        return F.relu(self.bn(self.conv(x)))\n", 4),
}


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_a_batchnorm_that_may_be_left_out_is_reported_not_fixed(name: str) -> None:
    source, line = GUARDED[name]
    assert fixed(source) == (source, [("BNP002", line)])


# The bias matters elsewhere, or cannot be switched off safely: nothing to report or fix.
NOT_REDUNDANT = {
    "output also read around the BN": (
        "class Skip(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(64, 64)\n"
        "        self.bn = nn.BatchNorm1d(64)\n"
        "    def forward(self, x):\n"
        "        h = self.fc(x)\n"
        "        return self.bn(h) + h\n"),
    "keras Add of the BN output and the raw output": (
        "h = layers.Dense(64)(inp)\n"
        "y = layers.BatchNormalization()(h)\n"
        "out = layers.Add()([y, h])\n"),
    "bias maybe passed in **kwargs": (
        "cfg = dict(kernel_size=3, bias=False)\n"
        "net = nn.Sequential(nn.Conv2d(3, 16, **cfg), nn.BatchNorm2d(16), nn.ReLU())\n"),
    "bias maybe passed in *args": (
        "args = (3, 16, 3, 1, 1, 1, 1, False)\n"
        "net = nn.Sequential(nn.Conv2d(*args), nn.BatchNorm2d(16), nn.ReLU())\n"),
}


@pytest.mark.parametrize("name", sorted(NOT_REDUNDANT))
def test_a_bias_needed_or_unknown_is_not_reported(name: str) -> None:
    source = NOT_REDUNDANT[name]
    assert fixed(source) == (source, [])


def test_a_layer_also_used_without_batchnorm_is_reported_not_fixed() -> None:
    source = ("def linear(i, o):\n"
              "    return nn.Linear(i, o)\n"
              "features = nn.Sequential(linear(16, 32), nn.BatchNorm1d(32), nn.ReLU())\n"
              "head = nn.Sequential(linear(32, 10))\n")
    assert fixed(source) == (source, [("BNP002", 2)])


NOT_FED_BY_DROPOUT = {
    "residual added in place before the BN": (
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)\n"
        "        self.drop = nn.Dropout(0.2)\n"
        "        self.bn = nn.BatchNorm2d(8)\n"
        "    def forward(self, x):\n"
        "        identity = x\n"
        "        out = self.drop(self.conv(x))\n"
        "        out += identity\n"
        "        return self.bn(out)\n"),
    "in-place add before the BN": (
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.drop = nn.Dropout(0.2)\n"
        "        self.bn = nn.BatchNorm1d(8)\n"
        "    def forward(self, x, y):\n"
        "        out = self.drop(x)\n"
        "        out.add_(y)\n"
        "        return self.bn(out)\n"),
    "tuple assignment reads the old value": (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.drop = nn.Dropout(0.2)\n"
        "        self.bn = nn.BatchNorm1d(8)\n"
        "    def forward(self, x):\n"
        "        x, z = self.drop(x), self.bn(x)\n"
        "        return x + z\n"),
}


@pytest.mark.parametrize("name", sorted(NOT_FED_BY_DROPOUT))
def test_a_batchnorm_not_fed_by_the_dropout_is_not_reported(name: str) -> None:
    source = NOT_FED_BY_DROPOUT[name]
    assert fixed(source) == (source, [])


def test_a_swap_that_would_leave_call_arguments_behind_is_not_made() -> None:
    source = ("x = layers.Dense(64, activation='relu')(inp)\n"
              "x = layers.Dropout(0.5)(x, training=True)\n"
              "x = layers.BatchNormalization()(x, training=False)\n")
    assert fixed(source) == (source, [("BNP001", 3)])


def test_transposed_convolutions_are_linear_layers() -> None:
    torch_source = ("net = nn.Sequential(nn.ConvTranspose2d(100, 64, 4, 1, 0),\n"
                    "                    nn.BatchNorm2d(64), nn.ReLU(True))\n")
    assert fixed(torch_source) == (
        "net = nn.Sequential(nn.ConvTranspose2d(100, 64, 4, 1, 0, bias=False),\n"
        "                    nn.BatchNorm2d(64), nn.ReLU(True))\n", [])
    keras_source = "x = Conv2DTranspose(64, 4, strides=2)(x)\nx = BatchNormalization()(x)\n"
    assert fixed(keras_source)[0] == keras_source.replace("strides=2)", "strides=2, use_bias=False)")
    assert code_lines("net = nn.Sequential(nn.ConvTranspose2d(8, 4, 3), nn.BatchNorm2d(8))\n",
                      select=("BNP004",)) == [("BNP004", 1)]


def test_keras_sequential_layers_keyword_and_a_class_nested_in_a_class() -> None:
    assert code_lines("model = Sequential(layers=[Dense(8, activation='relu'), Dropout(0.5),\n"
                      "                           BatchNormalization()])\n") == [("BNP001", 2)]
    assert code_lines("class Outer:\n"
                      "    class Inner(nn.Module):\n"
                      "        def __init__(self):\n"
                      "            super().__init__()\n"
                      "            self.net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))\n"
                      ) == [("BNP002", 5)]


def test_a_batchnorm_whose_output_is_thrown_away_is_unused() -> None:
    keras = ("x = Dense(64, use_bias=False)(inp)\n"
             "BatchNormalization()(x)\n"
             "x = Activation('relu')(x)\n")
    assert code_lines(keras) == [("BNP003", 2)]
    torch = ("class M(nn.Module):\n"
             "    def __init__(self):\n"
             "        super().__init__()\n"
             "        self.fc = nn.Linear(8, 16)\n"
             "        self.bn = nn.BatchNorm1d(16)\n"
             "    def forward(self, x):\n"
             "        x = self.fc(x)\n"
             "        self.bn(x)\n"
             "        return x.relu()\n")
    assert code_lines(torch) == [("BNP003", 8)]


def test_modules_read_by_a_computed_name_are_not_unused() -> None:
    source = ("class Net(nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        for i in (1, 2):\n"
              "            setattr(self, f'fc{i}', nn.Linear(8, 8, bias=False))\n"
              "        self.bn1 = nn.BatchNorm1d(8)\n"
              "        self.bn2 = nn.BatchNorm1d(8)\n"
              "    def forward(self, x):\n"
              "        for i in (1, 2):\n"
              "            x = getattr(self, f'bn{i}')(getattr(self, f'fc{i}')(x))\n"
              "        return x\n")
    assert code_lines(source) == []


def test_a_softmax_whose_weights_feed_later_layers_is_no_output() -> None:
    source = ("class AttnPool(nn.Module):\n"
              "    def __init__(self, dim):\n"
              "        super().__init__()\n"
              "        self.score = nn.Linear(dim, 1, bias=False)\n"
              "        self.bn = nn.BatchNorm1d(1)\n"
              "        self.out = nn.Linear(dim, 5)\n"
              "    def forward(self, x):\n"
              "        w = F.softmax(self.bn(self.score(x)), dim=0)\n"
              "        return self.out((w * x).sum(0))\n")
    assert code_lines(source) == []


def test_a_functools_partial_of_a_layer_class_builds_that_layer() -> None:
    """torchvision's ``norm_layer = partial(nn.BatchNorm2d, eps=0.001)``; a partial's preset
    keywords count, and the call's own keywords win over them."""
    source = ("import functools\n"
              "from functools import partial\n"
              "import torch.nn as tnn\n"
              "norm = functools.partial(tnn.BatchNorm2d, eps=0.001, momentum=0.01)\n"
              "conv = partial(tnn.Conv2d, kernel_size=3, bias=False)\n"
              "a = tnn.Sequential(tnn.Conv2d(3, 16, 3), norm(16), tnn.ReLU())\n"
              "b = tnn.Sequential(conv(3, 16), norm(16), conv(16, 8, bias=True), norm(8))\n")
    assert fixed(source) == (
        source.replace("(3, 16, 3)", "(3, 16, 3, bias=False)").replace(
            "bias=True), norm(8)", "bias=False), norm(8)"), [])
    assert code_lines("import torch.nn as nn\nfrom functools import partial\n"
                      "net = nn.Sequential(nn.Linear(4, 8), partial(nn.BatchNorm2d)(8))\n",
                      select=("BNP004",)) == [("BNP004", 3)]


CONTAINERS_OFF_THE_WALK = {
    "in a list comprehension": (
        "blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(c, c, 3), nn.BatchNorm2d(c))\n"
        "                        for c in (8, 16)])\n", "(c, c, 3)", 1),
    "in a lambda in a dict (DARTS' OPS)": (
        "OPS = {'conv_bn': lambda C: nn.Sequential(nn.Conv2d(C, C, 3), nn.BatchNorm2d(C))}\n",
        "(C, C, 3)", 1),
    "an argument of another call": (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.add_module('head', nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)))\n",
        "(8, 8)", 4),
    "a class attribute, indexed": (
        "class Net(nn.Module):\n"
        "    stem = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))[0]\n", "(4, 4)", 2),
}


@pytest.mark.parametrize("name", sorted(CONTAINERS_OFF_THE_WALK))
def test_a_sequential_in_any_expression_is_a_sequence(name: str) -> None:
    source, arguments, line = CONTAINERS_OFF_THE_WALK[name]
    assert code_lines(source) == [("BNP002", line)]
    assert fixed(source)[0] == source.replace(arguments, arguments[:-1] + ", bias=False)", 1)


def test_add_module_builds_a_sequential_and_a_fix_moves_each_name_with_its_module() -> None:
    """torchvision's DenseNet: ``class _DenseLayer(nn.Sequential)`` with
    ``self.add_module('norm1', ...),`` (a stray comma makes each a tuple statement)."""
    source = ("class Layer(nn.Sequential):\n"
              "    def __init__(self, c):\n"
              "        super().__init__()\n"
              "        self.add_module('conv', nn.Conv2d(c, c, 1)),\n"
              "        self.add_module('drop', nn.Dropout(0.2)),\n"
              "        self.add_module('norm', nn.BatchNorm2d(c)),\n"
              "seq = nn.Sequential()\n"
              "seq.add_module('drop', nn.Dropout(0.1))\n"
              "seq.add_module('bn', nn.BatchNorm1d(3))\n")
    assert code_lines(source) == [("BNP001", 6), ("BNP001", 9)]
    lines = source.splitlines(keepends=True)
    lines[4], lines[5], lines[7], lines[8] = lines[5], lines[4], lines[8], lines[7]
    expected = "".join(lines).replace("(c, c, 1)", "(c, c, 1, bias=False)")
    assert fixed(source) == (expected, [])


# Names bound once at the top of the module or class, read inside functions and methods.
BOUND_ONCE = ("import torch.nn as nn\n"
              "from functools import partial\n"
              "NORM = partial(nn.BatchNorm2d, eps=1e-3)\n"
              "BatchNorm = nn.BatchNorm2d\n"
              "Conv = partial(nn.Conv2d, bias=False)\n"
              "class Net(nn.Module):\n"
              "    norm_layer = nn.BatchNorm1d\n"
              "    def __init__(self, c):\n"
              "        super().__init__()\n"
              "        self.conv1 = nn.Conv2d(c, c, 3)\n"
              "        self.bn1 = NORM(c)\n"
              "        self.conv2 = nn.Conv2d(c, c, 3)\n"
              "        self.bn2 = BatchNorm(c)\n"
              "        self.conv3 = Conv(c, c, 3)\n"
              "        self.bn3 = self.norm_layer(c)\n"
              "        self.fc = nn.Linear(c, c)\n"
              "        self.bn4 = self.norm_layer(c)\n"
              "    def forward(self, x):\n"
              "        x = self.bn3(self.conv3(self.bn2(self.conv2(self.bn1(self.conv1(x))))))\n"
              "        return self.bn4(self.fc(x))\n"
              "def head(c):\n"
              "    return nn.Sequential(nn.Linear(c, c), BatchNorm(c))\n")


def test_names_bound_once_at_module_or_class_level_are_read_in_functions() -> None:
    """``Conv``'s preset ``bias=False`` holds (no BNP002 on line 14), and it is read as a
    Conv2d: BNP004 where the class attribute's BatchNorm1d reads it (line 19)."""
    assert code_lines(BOUND_ONCE) == [("BNP002", 10), ("BNP002", 12), ("BNP002", 16),
                                      ("BNP004", 19), ("BNP002", 22), ("BNP004", 22)]
    expected = BOUND_ONCE.replace("nn.Conv2d(c, c, 3)", "nn.Conv2d(c, c, 3, bias=False)").replace(
        "nn.Linear(c, c)", "nn.Linear(c, c, bias=False)")
    assert fixed(BOUND_ONCE) == (expected, [("BNP004", 19), ("BNP004", 22)])


REBOUND = {
    "module name bound twice": (
        "BatchNorm = nn.BatchNorm2d\n"
        "BatchNorm = nn.Identity\n"
        "def block(c):\n"
        "    return nn.Sequential(nn.Conv2d(c, c, 3), BatchNorm(c))\n"),
    "module name bound in try and except": (
        "try:\n"
        "    BatchNorm = nn.SyncBatchNorm\n"
        "except AttributeError:\n"
        "    BatchNorm = nn.Identity\n"
        "def block(c):\n"
        "    return nn.Sequential(nn.Conv2d(c, c, 3), BatchNorm(c))\n"),
    "class attribute overridden by a subclass": (
        "class Base(nn.Module):\n"
        "    norm_layer = nn.BatchNorm2d\n"
        "    def __init__(self, c):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Conv2d(c, c, 3), self.norm_layer(c))\n"
        "class NoNorm(Base):\n"
        "    norm_layer = nn.Identity\n"),
    "class attribute set on self": (
        "class Net(nn.Module):\n"
        "    norm_layer = nn.BatchNorm2d\n"
        "    def __init__(self, c, norm_layer):\n"
        "        super().__init__()\n"
        "        self.norm_layer = norm_layer\n"
        "        self.body = nn.Sequential(nn.Conv2d(c, c, 3), self.norm_layer(c))\n"),
    "local name rebound to something unknown": (
        "def block(c, make):\n"
        "    norm = nn.BatchNorm2d\n"
        "    norm = make()\n"
        "    return nn.Sequential(nn.Conv2d(c, c, 3), norm(c))\n"),
}


@pytest.mark.parametrize("name", sorted(REBOUND))
def test_a_name_bound_more_than_once_is_unknown(name: str) -> None:
    assert code_lines(REBOUND[name]) == []


def test_a_norm_layer_parameter_is_reported_not_fixed() -> None:
    """A default (or a class bound under ``if norm_layer is None:``) is what the code builds
    when the caller passes nothing; a caller may pass ``nn.Identity``, which needs the bias."""
    default = ("class Block(nn.Module):\n"
               "    def __init__(self, c, norm_layer=nn.BatchNorm2d):\n"
               "        super().__init__()\n"
               "        self.conv = nn.Conv2d(c, c, 3)\n"
               "        self.bn = norm_layer(c)\n"
               "    def forward(self, x):\n"
               "        return self.bn(self.conv(x))\n")
    assert fixed(default) == (default, [("BNP002", 4)])
    assigned = default.replace("norm_layer=nn.BatchNorm2d):\n", "norm_layer=None):\n"
                               "        if norm_layer is None:\n"
                               "            norm_layer = nn.BatchNorm2d\n")
    assert fixed(assigned) == (assigned, [("BNP002", 6)])


def test_a_repeated_list_is_read_as_copies_joined_end_to_first() -> None:
    """``[...] * 3`` repeats the layers: within a copy a finding is fixed once, in the one
    written list; across the join (the last layer of a copy feeding the first of the next) it
    is reported, not fixed: the two are not neighbours in the list."""
    within = ("net = nn.Sequential(*[nn.Linear(8, 8),\n"
              "                      nn.BatchNorm1d(8)] * 3)\n")
    assert fixed(within) == (within.replace("(8, 8)", "(8, 8, bias=False)"), [])
    swapped = ("layers = [nn.Linear(8, 8), nn.ReLU(),\n"
               "          nn.Dropout(0.5),\n"
               "          nn.BatchNorm1d(8)] * 2\n"
               "net = nn.Sequential(*layers)\n")
    assert fixed(swapped) == (swapped.replace("nn.Dropout(0.5),\n          nn.BatchNorm1d(8)",
                                              "nn.BatchNorm1d(8),\n          nn.Dropout(0.5)"),
                              [])
    across = ("def make(n):\n"
              "    layers = [nn.BatchNorm1d(8),\n"
              "              nn.Linear(8, 8), nn.Dropout(0.5)] * n\n"
              "    return nn.Sequential(*layers)\n")
    assert fixed(across) == (across, [("BNP001", 2)])
    once = "net = nn.Sequential(*[nn.BatchNorm1d(8), nn.Linear(8, 8), nn.Dropout(0.5)] * 1)\n"
    assert code_lines(once) == []


def test_a_linear_that_feeds_a_batchnorm_only_in_some_copies_keeps_its_bias() -> None:
    """``[bn, fc] * 2``: the first copy's Linear feeds the next copy's BatchNorm, the last
    copy's feeds nothing: one written layer, so its bias stays."""
    source = "net = nn.Sequential(*(2 * [nn.BatchNorm1d(8), nn.Linear(8, 8)]))\n"
    assert fixed(source) == (source, [("BNP002", 1)])


WALRUS_AND_MATCH = ("class Net(nn.Module):\n"
                    "    def __init__(self):\n"
                    "        super().__init__()\n"
                    "        self.fc = nn.Linear(8, 8)\n"
                    "        self.fc2 = nn.Linear(8, 8)\n"
                    "        self.drop = nn.Dropout(0.5)\n"
                    "        self.bn, self.bn2, self.bn3 = (nn.BatchNorm1d(8), nn.BatchNorm1d(8),\n"
                    "                                       nn.BatchNorm1d(8))\n"
                    "    def forward(self, x, mode):\n"
                    "        if (h := self.drop(self.fc(x))) is None:\n"
                    "            return x\n"
                    "        match mode:\n"
                    "            case 'norm':\n"
                    "                x = self.bn(h)\n"
                    "            case 'plain' if (z := self.fc2(x)) is not None:\n"
                    "                x = self.bn2(z)\n"
                    "            case [h, *_]:\n"
                    "                x = self.bn3(h)\n"
                    "        return x\n")


def test_walrus_binds_a_name_and_match_cases_are_branches() -> None:
    """``h := ...`` in an ``if`` test and ``z := ...`` in a case guard bind like assignments;
    a case body runs only in that case, so its findings are reported, not fixed (without
    ``bn2`` the bias of ``fc2`` counts); ``case [h, *_]`` rebinds ``h`` to a part of ``mode``
    nobody knows: no BNP001 on line 18."""
    assert fixed(WALRUS_AND_MATCH) == (WALRUS_AND_MATCH, [("BNP002", 5), ("BNP001", 14)])


def test_a_walrus_in_a_comprehension_is_not_followed() -> None:
    source = module_source(["self.drop = nn.Dropout(0.5)", "self.bn = nn.BatchNorm1d(8)"],
                           ["return [self.bn(y) for z in x if (y := self.drop(z)) is not None]"])
    assert code_lines(source) == []


# Normalisation layers that are not BatchNorm: no running batch statistics, so no rule applies.
NOT_BATCHNORM_TORCH = ("nn.LayerNorm(8)", "nn.GroupNorm(2, 8)", "nn.InstanceNorm1d(8)",
                       "nn.LocalResponseNorm(2)", "torchvision.ops.FrozenBatchNorm2d(8)",
                       "torch_geometric.nn.LayerNorm(8)", "torch_geometric.nn.GraphNorm(8)")
NOT_BATCHNORM_KERAS = ("layers.LayerNormalization()", "layers.GroupNormalization(2)",
                       "layers.UnitNormalization()", "keras.layers.Normalization()",
                       "tfa.layers.GroupNormalization(2)")


@pytest.mark.parametrize("norm", NOT_BATCHNORM_TORCH + NOT_BATCHNORM_KERAS)
def test_a_normalisation_that_is_not_batchnorm_is_never_reported_as_one(norm: str) -> None:
    """After a bias and after a Dropout, and built and thrown away: all fine for these. The
    file names a real BatchNorm too, so it is parsed, not skipped by the text pre-filter."""
    if norm in NOT_BATCHNORM_TORCH:
        source = ("import torch, torchvision, torch_geometric\nimport torch.nn as nn\n"
                  f"net = nn.Sequential(nn.Linear(8, 8), {norm}, nn.Dropout(0.5), {norm})\n"
                  "ok = nn.Sequential(nn.Linear(8, 8, bias=False), nn.BatchNorm1d(8))\n")
    else:
        source = ("from tensorflow import keras\nfrom tensorflow.keras import layers\n"
                  "import tensorflow_addons as tfa\n"
                  f"net = keras.Sequential([layers.Dense(8), {norm}, layers.Dropout(0.5),\n"
                  f"                        {norm}])\n"
                  "ok = keras.Sequential([layers.Dense(8, use_bias=False),\n"
                  "                      layers.BatchNormalization()])\n")
    assert code_lines(source + f"{norm}\n", select=("BNP",)) == []


def test_a_module_whose_name_contains_bn_is_what_it_is_built_as() -> None:
    source = module_source(["self.fc = nn.Linear(8, 8)", "self.bn_relu = nn.ReLU()",
                            "self.bn = nn.BatchNorm1d(8)"],
                           ["return self.bn(self.bn_relu(self.fc(x)))"])
    assert code_lines(source, select=("BNP",)) == []
    assert code_lines(source.replace("self.bn(self.bn_relu(", "self.bn_relu(("),
                      select=("BNP",)) == [("BNP003", 6)]


def test_pyg_batchnorm_is_a_batchnorm_over_nodes() -> None:
    """torch_geometric.nn.BatchNorm is torch.nn.BatchNorm1d over a batch's nodes."""
    source = ("import torch\n"
              "from torch_geometric.nn import BatchNorm, GCNConv\n"
              "class Net(torch.nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.conv = GCNConv(8, 8)\n"
              "        self.drop = torch.nn.Dropout(0.5)\n"
              "        self.bn = BatchNorm(8)\n"
              "        self.lin = torch.nn.Linear(8, 8)\n"
              "        self.bn_out = torch_geometric.nn.norm.BatchNorm(8)\n"
              "    def forward(self, x, edge_index):\n"
              "        x = self.bn(self.drop(self.conv(x, edge_index)))\n"
              "        return self.bn_out(self.lin(x))\n")
    assert fixed(source) == (source.replace("self.bn(self.drop(", "self.drop(self.bn(").replace(
        "Linear(8, 8)", "Linear(8, 8, bias=False)"), [])


def test_keras_sync_batchnormalization_is_a_batchnorm() -> None:
    """TF 2's ``experimental.SyncBatchNormalization`` keeps BatchNormalization's statistics,
    synchronised across replicas; Keras 3 spells it ``BatchNormalization(synchronized=True)``."""
    source = ("import tensorflow as tf\n"
              "from tensorflow.keras.layers.experimental import SyncBatchNormalization\n"
              "m = tf.keras.Sequential([tf.keras.layers.Dense(64),\n"
              "                         tf.keras.layers.experimental.SyncBatchNormalization()])\n"
              "n = tf.keras.Sequential([tf.keras.layers.Dropout(0.5), SyncBatchNormalization()])\n"
              "SyncBatchNormalization()\n"
              "o = tf.keras.Sequential([tf.keras.layers.Dense(64),\n"
              "                         tf.keras.layers.BatchNormalization(synchronized=True)])\n")
    assert code_lines(source) == [("BNP002", 3), ("BNP001", 5), ("BNP003", 6), ("BNP002", 7)]
    assert fixed(source) == (
        "import tensorflow as tf\n"
        "from tensorflow.keras.layers.experimental import SyncBatchNormalization\n"
        "m = tf.keras.Sequential([tf.keras.layers.Dense(64, use_bias=False),\n"
        "                         tf.keras.layers.experimental.SyncBatchNormalization()])\n"
        "n = tf.keras.Sequential([SyncBatchNormalization(), tf.keras.layers.Dropout(0.5)])\n"
        "SyncBatchNormalization()\n"
        "o = tf.keras.Sequential([tf.keras.layers.Dense(64, use_bias=False),\n"
        "                         tf.keras.layers.BatchNormalization(synchronized=True)])\n",
        [("BNP003", 6)])


def test_a_subclass_of_a_batchnorm_is_a_batchnorm() -> None:
    """``class ParallelBatchNorm1d(nn.BatchNorm1d)`` overriding ``forward`` (seen in public MLP
    code), and a subclass of that; a subclass of a conv may change what ``bias`` means: unknown."""
    source = ("import torch.nn as nn\n"
              "class ParallelBatchNorm1d(nn.BatchNorm1d):\n"
              "    def forward(self, x):\n"
              "        return super().forward(x.view(-1, x.shape[2])).view(*x.shape)\n"
              "class Frozen(ParallelBatchNorm1d):\n"
              "    pass\n"
              "class StdConv(nn.Conv2d):\n"
              "    pass\n"
              "def fc_layer(i, o):\n"
              "    return nn.Sequential(nn.Linear(i, o), ParallelBatchNorm1d(o))\n"
              "net = nn.Sequential(nn.Dropout(0.5), Frozen(8))\n"
              "convs = nn.Sequential(StdConv(3, 8, 3), nn.BatchNorm2d(8))\n"
              "Frozen(8)\n")
    assert code_lines(source) == [("BNP002", 10), ("BNP001", 11), ("BNP003", 13)]
