"""The neutral description the rules read: layers in data-flow order, with no libcst and no torch.

This is the small interface shared by the two front ends:

- ``bnplace.lint.sequences`` builds it from source code (positions are rows and columns);
- ``bnplace check`` (the graph side) builds it from a traced model (positions are module names).

A front end produces a :class:`Description`: the ordered :class:`Layer` sequences it found (each one
a path through the data flow, input first) and the BatchNorm layers it saw built but never used.
Rules (``bnplace.lint.rules``) turn a Description into findings; they never look further.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bnplace.placement import LayerKind


@dataclass(frozen=True)
class Location:
    """Where something is written: a source span (1-based row, 0-based column) or a module name."""

    row: int = 0
    column: int = 0
    end_row: int = 0
    end_column: int = 0
    module: str | None = None

    def __str__(self) -> str:
        return self.module if self.module is not None else f"{self.row}:{self.column + 1}"


@dataclass(frozen=True)
class Layer:
    """One layer of a sequence.

    ``kind`` is None for a layer that plays no role in a chain (pooling, a custom block): rules
    treat it as opaque. ``location`` is where the layer sits in the sequence (the list element, the
    call in ``forward``); ``definition`` is where it is constructed (its arguments live there).
    ``activation`` is the kind of a Dense/Conv's own ``activation=`` (ACTIVATION or OUTPUT).
    ``function`` is what an activation layer applies, as its key in ``placement.ACTIVATIONS``
    (``"sigmoid"`` for ``nn.Sigmoid()``, ``torch.sigmoid``, ``Activation('sigmoid')``).
    ``width`` is the output width of a linear layer or a BN's ``num_features``, when it is a
    constant (``128``, ``HIDDEN``, ``16 * 5 * 5``); ``dims`` the spatial dimensionality (1 for
    Linear/Conv1d/BatchNorm1d, 2 for Conv2d...).
    ``axes`` is, in every spelling known, the axis a Keras BatchNorm normalises
    (``axis=1``: ``{1}``; the default: ``{-1}``) or the axis a Keras linear layer's units lie on
    (``{-1, 3}`` for a channels-last ``Conv2D``, ``{1, -3}`` for a channels-first one, ``{-1}``
    for a ``Dense`` of unknown input rank); None where not read (PyTorch, a computed axis).
    ``movable`` says a fixer may swap this layer's expression with another's in place.
    ``arguments`` is what a call passes the layer besides its input (``training=training`` in
    ``self.drop(x, training=training)``): a swap of callees leaves it where it is, so it keeps
    the meaning only between two calls that pass the same.
    ``after_gap`` says it opens a comprehension or a repeated list (``*[...] * n``) and the
    layer before it is outside: a fix must not pair the two (a swap would move a layer into
    the repeat, and the repeat may make no items).
    ``guarded`` says it is built or called under an ``if`` or a conditional expression: the
    code may run without it. ``shared_output`` says other code reads its output too;
    ``maybe_shared_output`` that other code may read it on some runs (``return out, h`` after an
    ``if`` that may rebind ``h``, an attribute other methods may read): a fix must not count on
    the next layer being its only reader.
    """

    kind: LayerKind | None
    type_name: str
    location: Location
    definition: Location
    framework: str = ""  # "torch", "keras" or "" when unknown
    has_bias: bool | None = None
    activation: LayerKind | None = None
    width: int | None = None
    dims: int | None = None
    axes: frozenset[int] | None = None
    movable: bool = False
    arguments: str = ""
    function: str | None = None
    guarded: bool = False
    after_gap: bool = False
    shared_output: bool = False
    maybe_shared_output: bool = False


@dataclass(frozen=True)
class Description:
    """Everything the rules see of one source: layer sequences, and BatchNorm layers never used
    or whose output is thrown away (``self.bn(x)`` as a statement of its own). ``loads_weights``
    says the source loads saved weights into its models (``load_state_dict``): a fix must not
    add or remove a parameter, or they would no longer fit. ``reads_bias`` says it reads a
    layer's ``.bias`` and never tests one against None: without the bias that read fails."""

    sequences: tuple[tuple[Layer, ...], ...] = ()
    unused: tuple[Layer, ...] = field(default=())
    discarded: tuple[Layer, ...] = field(default=())  # called, its output thrown away
    loads_weights: bool = False
    reads_bias: bool = False
