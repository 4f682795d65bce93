"""--fix and containers the code refers to by position: directly (``seq[2]``, ``model.pop()``,
``enumerate(seq)``) or through a function's parameter, a call's result, a class attribute, a
copy, a key string or a checkpoint.
Swapping two of their layers would change what the position names, so BNP001 is reported (line
given) and the source left as written; a container nobody refers to by position is still fixed."""

from __future__ import annotations

import pytest

from tests.lint.helpers import fixed_at, module_source

DROP_BN = "nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))"
SEQ = "seq = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Dropout(0.5), nn.BatchNorm1d(8))\n"
KERAS = "Sequential([Dense(8, activation='relu'), Dropout(0.5), BatchNormalization()])"
# Net: self.net holds the pair (BatchNorm on line 4), forward() calls it
NET = module_source([f"self.net = {DROP_BN}"], ["return self.net(x)"]) + "\n"
INIT = "def init(s):\n    s[1].momentum = 0.01\n\n"  # refers to its parameter by position
FUNCTIONAL = ("inp = Input((8,))\nx = Dense(8, activation='relu')(inp)\n"
              "x = Dropout(0.5)(x)\nx = BatchNormalization()(x)\n")
INDENTED_FUNCTIONAL = "".join(f"    {line}\n" for line in FUNCTIONAL.splitlines())
SELF_SEQ = [f"self.seq = {DROP_BN}"]

INDEXED = {  # referred to directly
    "an index": (SEQ + "bn = seq[2]\n", 1),
    "a negative index": (SEQ + "bn = seq[-1]\n", 1),
    "a slice": (SEQ + "head = seq[:2]\n", 1),
    "an index assigned to": (SEQ + "seq[0] = nn.Identity()\n", 1),
    "keras layers": (f"model = {KERAS}\n" + "model.layers[2].trainable = False\n", 1),
    "keras last layer": (f"model = {KERAS}\n" + "model.layers[-1].trainable = False\n", 1),
    "keras pop": (f"model = {KERAS}\n" + "model.pop()\n", 1),
    "keras get_layer by index": (f"model = {KERAS}\n" + "bn = model.get_layer(index=2)\n", 1),
    "torch insert": (SEQ + "seq.insert(1, nn.ReLU())\n", 1),
    "grown by add and indexed": ("model = Sequential()\nmodel.add(Dropout(0.5))\n"
                                 "model.add(BatchNormalization())\nmodel.layers[1].trainable = 0\n",
                                 3),
    "the list it was built from": ("layers = [nn.Dropout(0.5), nn.BatchNorm1d(8)]\n"
                                   "seq = nn.Sequential(*layers)\nfirst = layers[0]\n", 1),
    "built from a list, indexed itself": ("layers = [nn.Dropout(0.5), nn.BatchNorm1d(8)]\n"
                                          "seq = nn.Sequential(*layers)\nfirst = seq[0]\n", 1),
    "an alias": (SEQ + "other = seq\nbn = other[2]\n", 1),
    "getattr by position": (SEQ + 'bn = getattr(seq, "2")\n', 1),
    "enumerate": (SEQ + "for i, layer in enumerate(seq):\n    print(i, layer)\n", 1),
    "zip": (SEQ + "for layer, p in zip(seq, [0.1, 0.2, 0.3]):\n    print(layer, p)\n", 1),
    "a list of its children": (SEQ + "bn = list(seq.children())[2]\n", 1),
    "its _modules": (SEQ + 'bn = seq._modules["2"]\n', 1),
    "on self, set in another method": (module_source(
        SELF_SEQ + ["self.seq[1].momentum = 0.01"], ["return self.seq(x)"]), 4),
    "on self, sliced in forward": (module_source(SELF_SEQ, ["return self.seq[:1](x)"]), 4),
    "a Sequential subclass": ("class Block(nn.Sequential):\n    def __init__(self):\n"
                              "        super().__init__(nn.Dropout(0.5), nn.BatchNorm1d(8))\n"
                              "        self[1].momentum = 0.01\n", 3),
    "added by name": (module_source(
        ['self.add_module("head", nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8)))',
         "self.head[0].p = 0.1"], ["return x"]), 4),
    "in a module list": (module_source(
        ["self.blocks = nn.ModuleList([nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))",
         "                             for _ in range(2)])", "self.blocks[0][0].p = 0.1"],
        ["return x"]), 4),
}

PASSED_TO_A_FUNCTION = {
    "an attribute, to a module function": (
        INIT + module_source([f"self.net = {DROP_BN}", "init(self.net)"],
                             ["return self.net(x)"]), 7),
    "a local": (INIT + f"net = {DROP_BN}\ninit(net)\n", 4),
    "by keyword": (INIT + f"net = {DROP_BN}\ninit(s=net)\n", 4),
    "to a method": (
        module_source([f"self.net = {DROP_BN}", "self.init(self.net)"], ["return self.net(x)"])
        + "    def init(self, s):\n        s[1].momentum = 0.01\n", 4),
    "on through another function": (
        INIT + f"def setup(m):\n    init(m)\n\nnet = {DROP_BN}\nsetup(net)\n", 7),
    "in *args": ("def init(*mods):\n    for m in mods:\n        m[1].p = 0.1\n\n"
                 f"net = {DROP_BN}\ninit(net)\n", 5),
    "to a class that keeps and indexes it": (
        "class Head(nn.Module):\n    def __init__(self, body):\n        super().__init__()\n"
        "        self.body = body\n    def forward(self, x):\n        return self.body[1](x)\n\n"
        f"head = Head({DROP_BN})\n", 8),
    "to a lambda": (f"init = lambda s: s[1]\nnet = {DROP_BN}\ninit(net)\n", 2),
    "built in the call": (INIT + f"init({DROP_BN})\n", 4),
    "to a static method": ("class Net(nn.Module):\n    @staticmethod\n    def init(s):\n"
                           f"        s[1].p = 0.1\n\nnet = {DROP_BN}\nNet.init(net)\n", 6),
    "to a method called on the class": (
        "class Net(nn.Module):\n    def init(self, s):\n        s[1].p = 0.1\n\n"
        f"net = {DROP_BN}\nNet.init(Net(), net)\n", 5),
}

RETURNED_BY_A_CALL = {
    "returned as built": (f"def make():\n    return {DROP_BN}\n\nbn = make()[1]\n", 2),
    "returned by name": (f"def make():\n    seq = {DROP_BN}\n    return seq\n\nbn = make()[1]\n",
                         2),
    "a method returning an attribute": (
        NET + "    def body(self):\n        return self.net\n\nbn = Net().body()[1]\n", 4),
    "keras layers": (f"def build():\n    return {KERAS}\n\nbuild().layers[2].trainable = False\n",
                     2),
    "a keras functional model": (
        "def build():\n" + INDENTED_FUNCTIONAL + "    return keras.Model(inp, x)\n\n"
        "model = build()\nfor layer in model.layers[:3]:\n    layer.trainable = False\n", 5),
}

CLASS_ATTRIBUTE = "class M(nn.Module):\n    head = " + DROP_BN + "\n"
CLASS_ATTRIBUTES = {
    "on self": (CLASS_ATTRIBUTE + "    def forward(self, x):\n"
                "        self.head[1].momentum = 0.01\n        return self.head(x)\n", 2),
    "on the class": (CLASS_ATTRIBUTE + "\nM.head[1].momentum = 0.01\n", 2),
    "on cls": (CLASS_ATTRIBUTE + "    @classmethod\n    def bn(cls):\n        return cls.head[1]\n",
               2),
    "through an alias": (CLASS_ATTRIBUTE + "    def forward(self, x):\n        block = self.head\n"
                         "        block[1].momentum = 0.01\n        return block(x)\n", 2),
}

OTHER_REFERENCES = {
    "an instance's attribute": (NET + "net = Net()\nnet.net[1].momentum = 0.01\n", 4),
    "a wrapped instance's attribute": (NET + "net = DDP(Net())\nnet.module.net[1].p = 0.1\n", 4),
    "getattr by computed name": (module_source(
        [f"self.block1 = {DROP_BN}"], ['getattr(self, f"block{1}")[1].momentum = 0.01',
                                       "return self.block1(x)"]), 4),
    "getattr by literal name": (module_source(
        [f"self.net = {DROP_BN}"], ['getattr(self, "net")[1].momentum = 0.01',
                                    "return self.net(x)"]), 4),
    "a deep copy": (SEQ + "other = copy.deepcopy(seq)\nother[2].momentum = 0.01\n", 1),
    "a loop over a list of containers": (SEQ + "for s in [seq]:\n    s[2].momentum = 0.01\n", 1),
    "a dict of containers": (SEQ + 'parts = {"a": seq}\nparts["a"][2].momentum = 0.01\n', 1),
    "a list comprehension": (SEQ + "mods = [m for m in seq]\nbn = mods[2]\n", 1),
    "a dict of its children": (SEQ + 'bn = dict(seq.named_children())["2"]\n', 1),
    "unpacked": (SEQ + "fc, drop, bn = seq\n", 1),
    "next(iter())": (SEQ + "first = next(iter(seq))\n", 1),
    "reversed": (SEQ + "for m in reversed(seq):\n    print(m)\n", 1),
    "islice": (SEQ + "first = list(itertools.islice(seq, 1))\n", 1),
    "get_submodule by position": (SEQ + 'bn = seq.get_submodule("2")\n', 1),
    "__getattr__ by position": (SEQ + 'bn = seq.__getattr__("2")\n', 1),
    "fuse_modules by position": (SEQ + 'fuse_modules(seq, [["0", "1"]], inplace=True)\n', 1),
    "a module dict entry": (module_source(
        [f'self.heads = nn.ModuleDict({{"a": {DROP_BN}}})'], ['return self.heads["a"][1](x)']),
        4),
    "added with setattr": (module_source(
        [f'setattr(self, "head", {DROP_BN})'], ["return self.head[1](x)"]), 4),
    "added with register_module": (module_source(
        [f'self.register_module("head", {DROP_BN})'], ["return self.head[1](x)"]), 4),
    "keras layers.index": (f"model = {KERAS}\nposition = model.layers.index(bn)\n", 1),
    "a keras functional model's layers": (
        FUNCTIONAL + "model = Model(inp, x)\nmodel.layers[3].trainable = False\n",
        4),
    "keras get_layer(index=) of a functional model": (
        FUNCTIONAL + "model = tf.keras.Model(inputs=inp, outputs=x)\n"
        "bn = model.get_layer(index=3)\n", 4),
}

KEY_STRINGS = {
    "a state_dict key": (NET + 'weight = Net().state_dict()["net.1.weight"]\n', 4),
    "an f-string key": (NET + 'for i in range(2):\n    print(state[f"net.{i}.weight"])\n', 4),
    "a %-format key": (NET + 'key = "net.%d.weight" % 1\n', 4),
    "a name prefix": (NET + "for name, p in Net().named_parameters():\n"
                      '    p.requires_grad = not name.startswith("net.1")\n', 4),
    "a named_modules path": (NET + 'bn = dict(Net().named_modules())["net.1"]\n', 4),
    "a key at the top of a sequential's state_dict": (
        SEQ + 'state = seq.state_dict()\nweight = state["2.weight"]\n', 1),
    "a checkpoint loaded by key": (NET + 'Net().load_state_dict(torch.load("net.pt"))\n', 4),
    "a checkpoint loaded leniently": (
        NET + 'Net().load_state_dict(torch.load("net.pt"), strict=False)\n', 4),
}

KEPT = {f"{group}: {name}": case for group, cases in (
    ("indexed", INDEXED), ("passed to a function", PASSED_TO_A_FUNCTION), ("returned by a call", RETURNED_BY_A_CALL),
    ("class attribute", CLASS_ATTRIBUTES), ("reference", OTHER_REFERENCES),
    ("key string", KEY_STRINGS)) for name, case in cases.items()}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_a_container_reached_by_position_is_reported_not_reordered(name: str) -> None:
    source, line = KEPT[name]
    assert fixed_at(source) == (source, [("BNP001", line)])



def test_indexing_another_container_leaves_the_fix() -> None:
    source = ("other = nn.Sequential(nn.Linear(8, 8), nn.ReLU())\nfirst = other[0]\n"
              "seq = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))\n"
              'block = nn.ModuleDict({"bn": nn.BatchNorm1d(8)})\nbn = block["bn"]\n'
              "out = seq(x)[:, 0]\n")
    assert fixed_at(source) == (source.replace("nn.Dropout(0.5), nn.BatchNorm1d(8)",
                                               "nn.BatchNorm1d(8), nn.Dropout(0.5)"), [])


FIXED = "nn.Sequential(nn.BatchNorm1d(8), nn.Dropout(0.5))"


def test_only_the_container_reached_by_position_keeps_its_order() -> None:
    """Next to a container given for an indexed parameter: one given for another parameter and
    to an unknown function, indexed tensors, strings that name no position, a state_dict saved."""
    source = ("def init(s, extra):\n    s[1].momentum = 0.01\n    print(extra)\n\n"
              f"pinned = {DROP_BN}\nfree = {DROP_BN}\ninit(pinned, free)\ninit_all(free)\n"
              'os.environ["CUDA_VISIBLE_DEVICES"] = "0"\nnew = torch.__version__ >= "1.8"\n'
              'torch.save(free.state_dict(), f"{epoch}.pt")\ny = free(x)[:, 0]\n')
    assert fixed_at(source) == (source.replace(f"free = {DROP_BN}", f"free = {FIXED}"),
                                [("BNP001", 5)])


def test_a_method_pins_only_the_argument_for_its_indexed_parameter() -> None:
    """``self.init(self.pinned, self.free)`` with ``init(self, s, other)`` indexing ``s``; a
    method of ``self`` given a position-like string (``self.log("0")``) pins no argument of
    other methods."""
    source = module_source([f"self.pinned = {DROP_BN}", f"self.free = {DROP_BN}",
                            'self.log("0")', "self.init(self.pinned, self.free)"],
                           ["return self.free(self.pinned(x))"])
    source += ("    def init(self, s, other):\n        s[1].momentum = 0.01\n"
               "        other.momentum = 0.01\n")
    assert fixed_at(source) == (source.replace(f"self.free = {DROP_BN}",
                                               f"self.free = {FIXED}"), [("BNP001", 4)])


def test_a_call_result_indexed_pins_only_what_that_function_returns() -> None:
    source = (f"def make():\n    return {DROP_BN}\n\ndef other():\n    return {DROP_BN}\n\n"
              "bn = make()[1]\nnet = other()\n")
    assert fixed_at(source) == (
        source.replace(f"def other():\n    return {DROP_BN}", f"def other():\n    return {FIXED}"),
        [("BNP001", 2)])


def test_a_checkpoint_loaded_leaves_layers_keyed_by_name_fixed() -> None:
    """``load_state_dict`` pins the layers whose keys are positions, not those added under a name
    (``add_module``) nor ``forward`` calls of modules kept in attributes."""
    init = [f"self.seq = {DROP_BN}", "self.named = nn.Sequential()",
            'self.named.add_module("drop", nn.Dropout(0.5))',
            'self.named.add_module("bn", nn.BatchNorm1d(8))',
            "self.drop = nn.Dropout(0.5)", "self.bn = nn.BatchNorm1d(8)"]
    source = (module_source(init, ["return self.bn(self.drop(x)) + self.named(x) + self.seq(x)"])
              + '\nNet().load_state_dict(torch.load("net.pt"))\n')
    fixed = source.replace(
        '''self.named.add_module("drop", nn.Dropout(0.5))
        self.named.add_module("bn", nn.BatchNorm1d(8))''',
        '''self.named.add_module("bn", nn.BatchNorm1d(8))
        self.named.add_module("drop", nn.Dropout(0.5))''').replace(
        "self.bn(self.drop(", "self.drop(self.bn(")
    assert fixed_at(source) == (fixed, [("BNP001", 4)])


def test_keras_base_layers_indexed_leave_the_functional_head_fixed() -> None:
    """``base.layers[:100]`` of an application model is no index into the head built after it;
    a Sequential returned by a call and indexed keeps its order."""
    source = ("base = ResNet50(include_top=False)\nfor layer in base.layers[:100]:\n"
              "    layer.trainable = False\nx = Dense(8, activation='relu')(base.output)\n"
              "x = Dropout(0.5)(x)\nx = BatchNormalization()(x)\nmodel = Model(base.input, x)\n"
              f"def build():\n    return {KERAS}\n\nbuild().layers[2].trainable = False\n")
    fixed = source.replace("x = Dropout(0.5)(x)\nx = BatchNormalization()(x)",
                           "x = BatchNormalization()(x)\nx = Dropout(0.5)(x)")
    assert fixed_at(source) == (fixed, [("BNP001", 9)])
