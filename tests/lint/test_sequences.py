"""Names resolved through imports, and order judged on data flow, not on neighbouring lines."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_lines, module_source

BN_AFTER_DROPOUT = {
    "import torch.nn as nn":
        "net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))",
    "from torch import nn":
        "net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))",
    "from torch.nn import BatchNorm1d as BN, Dropout as Drop, Sequential":
        "net = Sequential(Drop(0.5), BN(8))",
    "import tensorflow as tf":
        "m = tf.keras.Sequential([tf.keras.layers.Dropout(0.5),\n"
        "                         tf.keras.layers.BatchNormalization()])",
    "from keras.layers import *":
        "m = Sequential([Dropout(0.5), BatchNormalization()])",
    "from keras.layers.normalization import BatchNormalization\n"
    "from keras.layers.core import Dropout":
        "m = Sequential([Dropout(0.5), BatchNormalization()])",
    "from tensorflow.keras import layers as L":
        "m = keras.Sequential([L.Dropout(0.5), L.BatchNormalization()])",
}


@pytest.mark.parametrize("imports", sorted(BN_AFTER_DROPOUT))
def test_layer_names_resolve_through_imports(imports: str) -> None:
    source = f"{imports}\n{BN_AFTER_DROPOUT[imports]}\n"
    assert code_lines(source) == [("BNP001", len(source.splitlines()))]  # the BN ends the source


@pytest.mark.parametrize("imports", [
    "from keras.layers import Conv2D, BatchNormalization, Dropout",
    "from tensorflow.keras.layers import Conv2D, BatchNormalization, Dropout",
    "from keras.layers import *",
])
def test_functional_api_with_imported_layers(imports: str) -> None:
    # libcst qualifies the call ``Dropout(0.25)`` as the class it calls: the layer instance
    # applied to x must still be a step of the flow, not a layer stored in x
    source = (f"{imports}\n"
              "x = Conv2D(32, 3)(inputs)\n"
              "x = BatchNormalization()(x)\n"
              "x = Dropout(0.25)(x)\n"
              "x = BatchNormalization()(x)\n")
    assert code_lines(source) == [("BNP002", 2), ("BNP001", 5)]


def test_a_class_of_the_same_name_defined_here_is_not_a_layer() -> None:
    source = ("class BatchNormalization:\n    pass\n\n"
              "m = Sequential([Dropout(0.5), BatchNormalization()])\nBatchNormalization()\n")
    assert code_lines(source) == []


def test_neighbouring_lines_of_different_flows_are_no_chain() -> None:
    source = ("a = Dropout(0.5)(x)\n"
              "b = BatchNormalization()(y)\n"
              "c = BatchNormalization()(a)\n")
    assert code_lines(source) == [("BNP001", 3)]


def test_helpers_defined_one_after_the_other_are_no_chain() -> None:
    source = ("import torch.nn.functional as F\n\n"
              "def dropout(x):\n    return F.dropout(x, 0.5)\n\n"
              "def bn(x):\n    return F.batch_norm(x, None, None, training=True)\n")
    assert code_lines(source) == []


def test_helper_returning_layers_feeds_the_model_it_builds() -> None:
    source = ("def head():\n    return [Dense(10, activation='relu'), Dropout(0.5)]\n\n"
              "model = Sequential(conv_layers() + head() + [BatchNormalization()])\n")
    assert code_lines(source) == [("BNP001", 4)]


def test_functional_calls_and_tensor_methods_make_a_chain() -> None:
    source = ("import torch.nn.functional as F\nfrom torch import nn\n\n"
              "class Net(nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.fc = nn.Linear(8, 8)\n"
              "        self.bn = nn.BatchNorm1d(8)\n"
              "    def forward(self, x):\n"
              "        h = F.dropout(self.fc(x).relu(), 0.5, self.training)\n"
              "        h = h.view(h.size(0), -1)\n"
              "        return self.bn(h)\n")
    assert code_lines(source) == [("BNP001", 12)]


def test_dense_with_its_own_activation_keeps_its_bias() -> None:
    source = ("model.add(Dense(64, activation='relu'))\nmodel.add(BatchNormalization())\n"
              "model.add(Dense(64, activation=None))\nmodel.add(BatchNormalization())\n")
    assert code_lines(source) == [("BNP002", 3)]


def test_a_batchnorm_kept_and_passed_on_is_used() -> None:
    source = ("nl1 = BatchNormalization()\ninsert_layer(model, nl1, 5)\n"
              "def f():\n    nl2 = BatchNormalization()\n    nl2 = None\n")
    assert code_lines(source) == [("BNP003", 4)]


def test_a_model_name_reused_for_a_second_model_keeps_both() -> None:
    source = ("model = Sequential()\nmodel.add(Dropout(0.5))\nmodel.add(BatchNormalization())\n"
              "model = Sequential()\nmodel.add(Dense(8))\nmodel.add(BatchNormalization())\n")
    assert code_lines(source) == [("BNP001", 3), ("BNP002", 5)]


def test_both_branches_of_an_if_else_are_read() -> None:
    source = ("if wide:\n    head = [Dense(512, activation='relu'), Dropout(0.5)]\n"
              "else:\n    head = [Dense(64), BatchNormalization()]\n"
              "model = Sequential(head + [BatchNormalization()])\n")
    assert code_lines(source) == [("BNP002", 4), ("BNP001", 5)]


def test_a_bias_switch_computed_at_run_time_is_left_alone() -> None:
    source = ("net = nn.Sequential(nn.Linear(8, 8, bias=use_bias), nn.BatchNorm1d(8),\n"
              "                    nn.Linear(8, 8, bias=True), nn.BatchNorm1d(8))\n")
    assert code_lines(source) == [("BNP002", 2)]


def test_with_try_and_loops_are_walked_in_order() -> None:
    source = ("import torch\nfrom torch import nn\n\n"
              "def run(x, drop: nn.Module, bn: nn.Module):\n"
              "    head = nn.Sequential(nn.Linear(8, 8), nn.ReLU())\n"
              "    with torch.no_grad():\n"
              "        try:\n"
              "            head.append(nn.Dropout(0.1))\n"
              "        finally:\n"
              "            head.append(nn.BatchNorm1d(8))\n"
              "    return head(x)\n")
    assert code_lines(source) == [("BNP001", 10)]


def test_resnet_style_norm_layer_alias_and_module_methods() -> None:
    source = ("from torch import nn\n\n"
              "class Block(nn.Module):\n"
              "    def __init__(self, planes, norm_layer=None):\n"
              "        super().__init__()\n"
              "        if norm_layer is None:\n"
              "            norm_layer = nn.BatchNorm2d\n"
              "        self.conv = nn.Conv2d(planes, planes, 3).to(dtype=torch.float)\n"
              "        self.bn = norm_layer(planes).cuda()\n"
              "    def forward(self, x):\n"
              "        return self.bn(self.conv(x)).relu()\n")
    assert code_lines(source) == [("BNP002", 8)]


def test_tuple_assignments_bind_each_layer() -> None:
    source = ("from torch import nn\n\n"
              "class Net(nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.drop, self.bn = nn.Dropout(0.5), nn.BatchNorm1d(8)\n"
              "    def forward(self, x):\n"
              "        return self.bn(self.drop(x))\n")
    assert code_lines(source) == [("BNP001", 8)]


def test_add_module_and_conditional_expressions_in_forward() -> None:
    source = ("from torch import nn\n\n"
              "head = nn.Sequential()\n"
              "head.add_module('fc', nn.Linear(8, 8))\n"
              "head.add_module('bn', nn.BatchNorm1d(8))\n\n"
              + module_source(["self.drop = nn.Dropout(0.5)", "self.bn = nn.BatchNorm1d(8)"],
                              ["x = self.drop(x) if self.training else x", "return self.bn(x)"]))
    assert code_lines(source) == [("BNP002", 4), ("BNP001", 14)]


def test_a_sequential_subclass_passes_its_layers_to_super() -> None:
    # torchvision's ConvBNActivation shape; the same call in a plain Module builds nothing
    source = ("class ConvBN(nn.Sequential):\n"
              "    def __init__(self, cin, cout):\n"
              "        super().__init__(\n"
              "            nn.Conv2d(cin, cout, 3),\n"
              "            nn.Dropout(0.1),\n"
              "            nn.BatchNorm2d(cout),\n"
              "        )\n"
              "\n"
              "class Mixin(Base):\n"
              "    def __init__(self):\n"
              "        super().__init__(nn.Dropout(0.1), nn.BatchNorm1d(4))\n")
    assert code_lines(source) == [("BNP001", 6)]
