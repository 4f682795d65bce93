"""BNP002 redundant-bias: a linear layer with a bias whose output goes straight into a BatchNorm."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer, Location
from bnplace.lint.rules.rule import Rule, indices_of, neighbour
from bnplace.placement import LayerKind

BIAS_KEYWORD = {"keras": "use_bias", "torch": "bias"}


def _feeds_batchnorm(layers: tuple[Layer, ...], i: int) -> bool:
    """Whether the linear layer at ``i`` (with a bias, no activation of its own) feeds only a BN
    (an output read elsewhere too, ``self.bn(h) + h``, needs its bias there) that normalises
    the axis its bias lies on."""
    j = neighbour(layers, i, 1)
    return (bool(layers[i].has_bias) and layers[i].activation is None and j is not None
            and layers[j].kind is LayerKind.BATCHNORM and not layers[i].shared_output
            and not _normalises_another_axis(layers[i], layers[j], reshaped=j > i + 1))


def _normalises_another_axis(linear: Layer, bn: Layer, reshaped: bool) -> bool:
    """A BN whose channels are not the linear layer's units: ``Linear(z, 6 * 7 * 7)``,
    ``Unflatten`` and ``BatchNorm2d(6)`` leave each unit's bias, varying over the 7 x 7 map,
    minus only its channel's mean. So does a BN of another width (``Linear(d, 64)`` on
    ``(N, L, d)`` then ``BatchNorm1d(L)``: one mean per position, BNP004's finding) and a
    Keras BN over another axis (``BatchNormalization(axis=1)`` after a channels-last conv)."""
    return ((reshaped and linear.dims is not None and bn.dims is not None
             and linear.dims != bn.dims)
            or (linear.width is not None and bn.width is not None and linear.width != bn.width)
            or (linear.axes is not None and bn.axes is not None and not linear.axes & bn.axes))


def check(description: Description) -> Iterator[Finding]:
    uses: dict[Location, list[bool]] = defaultdict(list)  # definition -> feeds a BN, per use
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.LINEAR):
            uses[layers[i].definition].append(_feeds_batchnorm(layers, i))
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.LINEAR):
            if not _feeds_batchnorm(layers, i):
                continue
            j = neighbour(layers, i, 1)
            linear, bn = layers[i], layers[j]
            keyword = BIAS_KEYWORD.get(linear.framework, "bias")
            # A layer also used where no BN follows (VGG's ``conv2d`` without batch_norm, a
            # helper's layer), a BN that may be left out (``if use_bn:``), or an output other
            # code may read on some runs, or a BN across a gap (a comprehension that may make no
            # items), needs the bias there; saved weights loaded by the file
            # hold the bias, and a read of ``m.bias`` would find None: report, do not fix.
            safe = (bool(linear.framework) and all(uses[linear.definition]) and not bn.guarded
                    and not any(layer.after_gap for layer in layers[i + 1:j + 1])
                    and not linear.maybe_shared_output and not description.loads_weights
                    and not description.reads_bias)
            yield Finding("BNP002", f"{linear.type_name} has a bias that the {bn.type_name} "
                          f"after it subtracts away: pass {keyword}=False", linear.definition,
                          (linear,), f"Add {keyword}=False" if safe else None)


RULE = Rule(
    code="BNP002",
    name="redundant-bias",
    summary="a linear layer's bias is cancelled by the BatchNorm right after it",
    what="Checks for a Linear/Conv (Keras Dense/Conv) layer that has a bias and no activation of "
         "its own and whose output goes straight into a BatchNorm. The finding is on the line "
         "where the linear layer is constructed. An `activation=` the linter cannot name (a "
         "parameter passed on, `LeakyReLU(0.2)`) may be a real one, so it counts as one. A BN "
         "whose channels are not the layer's units keeps the bias: `Linear(z, 6 * 7 * 7)`, "
         "`Unflatten` to `(6, 7, 7)`, `BatchNorm2d(6)` (each unit's bias varies over the map), "
         "a `BatchNorm1d(1)` over an `(N, 1, L)` input, a BN whose `num_features` is not the "
         "layer's width (`Linear(d, 64)` on `(N, L, d)` then `BatchNorm1d(L)`: one mean per "
         "position; BNP004 reports the mismatch), or a Keras `BatchNormalization(axis=...)` "
         "over an axis that is not the layer's units (`axis=1` after a channels-last "
         "`Conv2D` or after a `Dense`, whose input may have more than two axes).",
    why="BatchNorm subtracts the batch mean from each channel, so a constant added per channel "
        "just before it cancels out; BN's own shift (beta) plays its part. The bias is wasted "
        "parameters and compute. Ioffe & Szegedy 2015 (section 3.2) note the bias \"can be "
        "ignored\". With an activation in between (`Dense(64, activation='relu')`), the bias is "
        "not redundant and nothing is reported.",
    fix="Construct the layer with `use_bias=False` (Keras) or `bias=False` (PyTorch); `--fix` adds "
        "it, except in a file that loads saved weights (`load_state_dict`, `load_weights`, "
        "`load_from_checkpoint`): they hold the bias, and would no longer load without it.",
    valid=(
        "model.add(Dense(64, use_bias=False))\nmodel.add(BatchNormalization())\n",
        "model.add(Dense(64, activation='relu'))\nmodel.add(BatchNormalization())\n",
        "net = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU())\n",
        "model.add(Dense(64, 'relu'))\nmodel.add(BatchNormalization())\n",
        "net = nn.Sequential(nn.Linear(64, 32, False), nn.BatchNorm1d(32), nn.ReLU())\n",
        "net = nn.Sequential(nn.Conv2d(3, 16, 3, bias=None), nn.BatchNorm2d(16), nn.ReLU())\n",
    ),
    invalid=(
        "model.add(Dense(64))  # <- BNP002\nmodel.add(BatchNormalization())\n",
        "net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU())  # <- BNP002\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(64, 32)  # <- BNP002\n"
        "        self.bn = nn.BatchNorm1d(32)\n"
        "    def forward(self, x):\n"
        "        return F.relu(self.bn(self.fc(x)))\n",
    ),
    check=check,
    fixable=True,
)
