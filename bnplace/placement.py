"""The shared vocabulary: placements, layer kinds and the one name table every part reads.

The table holds *names* only (strings), never torch objects, so the linter can use it without
importing torch. The graph side resolves the names against ``torch.nn`` and friends.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Placement(str, Enum):
    """Where the BatchNorm sits in a linear → activation → dropout chain."""

    BEFORE_ACTIVATION = "before-activation"
    AFTER_ACTIVATION = "after-activation"
    AFTER_DROPOUT = "after-dropout"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, name: str | Placement) -> Placement:
        """Accept a CLI name (``after-activation``), an enum name or a Placement."""
        if isinstance(name, Placement):
            return name
        key = str(name).strip().lower().replace("_", "-")
        for placement in cls:
            if placement.value == key:
                return placement
        choices = ", ".join(p.value for p in cls)
        raise ValueError(f"unknown placement {name!r}; choose one of: {choices}")


class LayerKind(str, Enum):
    """The roles a layer can play in a chain (plus layers the passes look through)."""

    LINEAR = "linear"
    ACTIVATION = "activation"
    DROPOUT = "dropout"
    BATCHNORM = "batchnorm"
    RESHAPE = "reshape"
    OUTPUT = "output"


@dataclass(frozen=True)
class Names:
    """How one layer type is spelled in torch (module class, functions) and in Keras."""

    torch_modules: tuple[str, ...] = ()
    torch_functions: tuple[str, ...] = ()
    keras_layers: tuple[str, ...] = ()
    keras_strings: tuple[str, ...] = ()


def _act(module: str, functions: tuple[str, ...], keras_layers: tuple[str, ...] = (),
         keras_strings: tuple[str, ...] = ()) -> Names:
    return Names((module,), functions, keras_layers, keras_strings)


# One line per activation: torch module, its function/method names (in-place forms too), Keras spellings.
ACTIVATIONS: dict[str, Names] = {
    "relu": _act("ReLU", ("relu", "relu_"), ("ReLU",), ("relu",)),
    "relu6": _act("ReLU6", ("relu6",), (), ("relu6",)),
    "hardtanh": _act("Hardtanh", ("hardtanh", "hardtanh_")),
    "leaky_relu": _act("LeakyReLU", ("leaky_relu", "leaky_relu_"), ("LeakyReLU",), ("leaky_relu",)),
    "prelu": _act("PReLU", ("prelu",), ("PReLU",)),
    "elu": _act("ELU", ("elu", "elu_"), ("ELU",), ("elu",)),
    "selu": _act("SELU", ("selu", "selu_"), (), ("selu",)),
    "celu": _act("CELU", ("celu", "celu_"), ()),
    "gelu": _act("GELU", ("gelu",), (), ("gelu",)),
    "silu": _act("SiLU", ("silu", "silu_"), (), ("silu", "swish")),
    "mish": _act("Mish", ("mish", "mish_"), (), ("mish",)),
    "hardswish": _act("Hardswish", ("hardswish", "hardswish_"), (), ("hard_swish", "hard_silu")),
    "hardsigmoid": _act("Hardsigmoid", ("hardsigmoid", "hardsigmoid_"), (), ("hard_sigmoid",)),
    "sigmoid": _act("Sigmoid", ("sigmoid", "sigmoid_"), (), ("sigmoid",)),
    "tanh": _act("Tanh", ("tanh", "tanh_"), (), ("tanh",)),
    "softplus": _act("Softplus", ("softplus",), (), ("softplus",)),
}

LAYER_NAMES: dict[LayerKind, Names] = {
    LayerKind.LINEAR: Names(
        torch_modules=("Linear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d",
                       "LazyConv1d", "LazyConv2d", "LazyConv3d", "ConvTranspose1d",
                       "ConvTranspose2d", "ConvTranspose3d", "LazyConvTranspose1d",
                       "LazyConvTranspose2d", "LazyConvTranspose3d"),
        torch_functions=("linear", "conv1d", "conv2d", "conv3d"),
        keras_layers=("Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
                      "DepthwiseConv2D", "Convolution1D", "Convolution2D", "Convolution3D",
                      "SeparableConvolution2D", "Conv1DTranspose", "Conv2DTranspose",
                      "Conv3DTranspose", "Convolution2DTranspose", "Convolution3DTranspose"),
    ),
    LayerKind.ACTIVATION: Names(
        torch_modules=tuple(m for n in ACTIVATIONS.values() for m in n.torch_modules),
        torch_functions=tuple(f for n in ACTIVATIONS.values() for f in n.torch_functions),
        keras_layers=("Activation",) + tuple(k for n in ACTIVATIONS.values() for k in n.keras_layers),
        keras_strings=tuple(s for n in ACTIVATIONS.values() for s in n.keras_strings),
    ),
    LayerKind.DROPOUT: Names(
        torch_modules=("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                       "FeatureAlphaDropout"),
        torch_functions=("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                         "feature_alpha_dropout", "dropout_"),
        keras_layers=("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                      "AlphaDropout", "GaussianDropout"),
    ),
    LayerKind.BATCHNORM: Names(
        torch_modules=("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d",
                       "LazyBatchNorm2d", "LazyBatchNorm3d", "SyncBatchNorm"),
        torch_functions=("batch_norm",),
        keras_layers=("BatchNormalization", "SyncBatchNormalization"),
    ),
    LayerKind.RESHAPE: Names(
        torch_modules=("Flatten", "Unflatten", "Identity"),
        torch_functions=("flatten", "view", "reshape", "view_as", "reshape_as", "permute",
                         "squeeze", "unsqueeze"),
        keras_layers=("Flatten", "Reshape", "Permute"),
    ),
    LayerKind.OUTPUT: Names(
        torch_modules=("Softmax", "LogSoftmax"),
        torch_functions=("softmax", "log_softmax"),
        keras_layers=("Softmax",),
        keras_strings=("softmax", "log_softmax"),
    ),
}

# Keras activation strings meaning "no activation".
KERAS_IDENTITY_ACTIVATIONS: tuple[str, ...] = ("linear", "None")


def kind_of_torch_module(class_name: str) -> LayerKind | None:
    """The kind of a ``torch.nn`` class name, or None when it plays no role in a chain."""
    return _TORCH_MODULE_KINDS.get(class_name)


def kind_of_torch_function(name: str) -> LayerKind | None:
    """The kind of a torch function or Tensor method name (``relu``, ``dropout``...)."""
    return _TORCH_FUNCTION_KINDS.get(name)


def kind_of_keras_layer(class_name: str) -> LayerKind | None:
    """The kind of a Keras layer class name (``Dense``, ``BatchNormalization``...)."""
    return _KERAS_LAYER_KINDS.get(class_name)


def kind_of_keras_activation(name: str) -> LayerKind | None:
    """What a Keras ``activation='...'`` string means: an activation, an output, or nothing."""
    if name in KERAS_IDENTITY_ACTIVATIONS:
        return None
    return _KERAS_STRING_KINDS.get(name)


def activation_function(name: str) -> str | None:
    """Which activation a torch module, function or method name or a Keras layer or string
    spells, as its key in ACTIVATIONS (``Sigmoid``, ``sigmoid_``, ``'sigmoid'``: ``sigmoid``)."""
    return _ACTIVATION_FUNCTIONS.get(name)


def _index(field: str) -> dict[str, LayerKind]:
    # RESHAPE/OUTPUT names come first so a chain role wins where a name is shared.
    order = (LayerKind.RESHAPE, LayerKind.OUTPUT, LayerKind.LINEAR, LayerKind.ACTIVATION,
             LayerKind.DROPOUT, LayerKind.BATCHNORM)
    return {name: kind for kind in order for name in getattr(LAYER_NAMES[kind], field)}


_TORCH_MODULE_KINDS = _index("torch_modules")
_TORCH_FUNCTION_KINDS = _index("torch_functions")
_KERAS_LAYER_KINDS = _index("keras_layers")
_KERAS_STRING_KINDS = _index("keras_strings")
_ACTIVATION_FUNCTIONS = {spelling: key for key, names in ACTIVATIONS.items()
                         for spelling in (*names.torch_modules, *names.torch_functions,
                                          *names.keras_layers, *names.keras_strings)}
