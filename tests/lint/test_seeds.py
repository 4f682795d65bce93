"""The snippets that started the project, with the exact findings each must give."""

from __future__ import annotations

from tests.lint.helpers import code_lines

LESSON3_GET_BN_LAYERS = """\
def get_bn_layers(p):
    return [
        MaxPooling2D(input_shape=conv_layers[-1].output_shape[1:]),
        Flatten(),
        Dense(4096, activation='relu'),
        Dropout(p),
        BatchNormalization(),
        Dense(4096, activation='relu'),
        Dropout(p),
        BatchNormalization(),
        Dense(1000, activation='softmax')
        ]
"""

STACKOVERFLOW_MNIST_MODEL = """\
from keras.models import Sequential
from keras.layers.core import Dense, Dropout, Activation
from keras.layers.normalization import BatchNormalization

model = Sequential()
model.add(Dense(64, input_dim=14, init='uniform'))
model.add(BatchNormalization())
model.add(Activation('tanh'))
model.add(Dropout(0.5))
model.add(Dense(64, init='uniform'))
model.add(BatchNormalization())
model.add(Activation('tanh'))
model.add(Dropout(0.5))
model.add(Dense(2, init='uniform'))
model.add(BatchNormalization())
model.add(Activation('softmax'))
"""

ORPHAN_STATEMENT = """\
from keras.layers.normalization import BatchNormalization
BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True)
"""

USE_BIAS_FALSE_ANSWER = """\
model.add(Dense(64, use_bias=False))
model.add(BatchNormalization())
model.add(Activation('relu'))
"""


def test_lesson3_get_bn_layers_puts_bn_after_dropout_twice() -> None:
    assert code_lines(LESSON3_GET_BN_LAYERS) == [("BNP001", 7), ("BNP001", 10)]


def test_mnist_model_has_redundant_biases_and_bn_on_the_output() -> None:
    assert code_lines(STACKOVERFLOW_MNIST_MODEL) == [
        ("BNP002", 6), ("BNP002", 10), ("BNP002", 14), ("BNP005", 15)]


def test_orphan_batchnorm_statement_is_unused() -> None:
    assert code_lines(ORPHAN_STATEMENT) == [("BNP003", 2)]


def test_use_bias_false_answer_is_clean() -> None:
    assert code_lines(USE_BIAS_FALSE_ANSWER) == []


def test_dropout_upstream_rule_leaves_direct_cases_to_bnp001() -> None:
    assert code_lines(LESSON3_GET_BN_LAYERS, select=("BNP001", "BNP006")) == [
        ("BNP001", 7), ("BNP001", 10)]
