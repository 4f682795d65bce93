"""Round seven of sources the linter was not written against: files as they come in the wild
(mixed and old-Mac line ends, form feeds, trailing blank lines, read-only files) and layers of
look-alike frameworks (Gluon, Flax, Haiku, Paddle, TF 1, Equinox, a module of the user's own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bnplace.cli import main
from tests.lint.helpers import code_lines, fixed_at

_LAYERS = "nn.Linear(3, 4, bias=False), nn.Dropout(0.5), nn.BatchNorm1d(4)"
_SWAPPED = "nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Dropout(0.5)"


def test_a_file_with_mixed_line_ends_is_linted_and_fixed_keeping_each_one() -> None:
    source = (f"import torch.nn as nn\r\n# edited on Linux\nnet = nn.Sequential({_LAYERS})\r\n"
              "x = 1\n")
    assert code_lines(source) == [("BNP001", 3)]
    assert fixed_at(source) == (source.replace(_LAYERS, _SWAPPED), [])


def test_only_the_lines_a_fix_changes_are_rewritten() -> None:
    source = ("import torch.nn as nn\r\nnet = nn.Sequential(\r\n    nn.Linear(3, 4),\n"
              "    nn.BatchNorm1d(4),\r\n)\n")
    assert fixed_at(source) == (source.replace("4),\n", "4, bias=False),\n"), [])


@pytest.mark.parametrize("source", [
    # an old Mac file: libcst drops its last line end
    f"import torch.nn as nn\rnet = nn.Sequential({_LAYERS})\r",
    # a form feed (a page break) that starts a line: libcst drops it
    f"import torch.nn as nn\nnet = nn.Sequential({_LAYERS})\n\x0cx = 1\n",
    # whitespace-only lines that end the file inside a block: libcst drops them
    f"import torch.nn as nn\nnet = nn.Sequential({_LAYERS})\nif net:\n    pass\n  \n",
], ids=["cr", "form-feed", "trailing-blank-line"])
def test_fix_keeps_the_rest_of_the_file_byte_for_byte(source: str) -> None:
    assert fixed_at(source) == (source.replace(_LAYERS, _SWAPPED), [])


def test_fix_on_a_file_that_cannot_be_written_reports_it_and_its_findings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.py"
    source = f"import torch.nn as nn\nnet = nn.Sequential({_LAYERS})\n"
    path.write_text(source)

    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "write_bytes", refuse)
    result = CliRunner().invoke(main, ["lint", "--fix", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: cannot write the fixes: [Errno 13] Permission "
                             f"denied: '{path}'\n")
    assert result.stdout.startswith(f"{path}:2:67: BNP001 [*] ")
    assert path.read_text() == source


_TWO_LIBRARIES = """try:
    import torch.nn as nn
except ImportError:
    from {module} import nn
net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.BatchNorm1d(4))
"""
_TWO_KERAS = """try:
    from tensorflow import keras
except ImportError:
    import keras
model = keras.Sequential([keras.layers.Dense(4, use_bias=False), keras.layers.Dropout(0.5),
                          keras.layers.BatchNormalization()])
"""


@pytest.mark.parametrize("module", ["paddle", "utils"])  # sorted before torch, and after
def test_a_name_imported_from_two_libraries_is_unknown_unless_both_are_one_kind(
        module: str) -> None:
    assert code_lines(_TWO_LIBRARIES.format(module=module)) == []
    assert code_lines(_TWO_KERAS) == [("BNP001", 6)]


LOOK_ALIKES = {
    "gluon": """from mxnet.gluon import nn
net = nn.HybridSequential()
net.add(nn.Dense(64), nn.BatchNorm(), nn.Dropout(0.5), nn.BatchNorm())
""",
    "flax": """import flax.linen as nn
class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(64)(x)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.BatchNorm(use_running_average=not train)(x)
""",
    "haiku": """import haiku as hk
net = hk.Sequential([hk.Linear(4), hk.BatchNorm(True, True, 0.9)])
""",
    "paddle": """import paddle.nn as nn
net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1D(4), nn.Dropout(0.5), nn.BatchNorm(4))
""",
    "tf1-functional": """import tensorflow as tf
x = tf.layers.dense(x, 64)
x = tf.compat.v1.layers.dropout(x, 0.5)
x = tf.compat.v1.layers.batch_normalization(x, training=True)
""",
    "equinox": """import equinox as eqx
seq = eqx.nn.Sequential([eqx.nn.Linear(3, 4, key=k), eqx.nn.Dropout(0.5),
                         eqx.nn.BatchNorm(4, axis_name="batch")])
""",
    "own-nn": """import mymodels.nn as nn
net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.BatchNorm1d(4))
""",
    "local-class": """from keras.layers import Dense, Dropout
class BatchNormalization:
    def __call__(self, x):
        return x
model = Sequential([Dense(4), BatchNormalization(), Dropout(0.5), BatchNormalization()])
""",
}


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_layers_of_another_framework_are_never_taken_for_torch_or_keras(name: str) -> None:
    """Their BatchNorm and bias work otherwise (Paddle's ``bias_attr``, Flax's
    ``use_running_average``): a fix in torch or Keras words would be wrong there."""
    assert code_lines(LOOK_ALIKES[name]) == []
