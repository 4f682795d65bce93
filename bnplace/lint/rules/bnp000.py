"""BNP000: the file does not parse. Reported by the file front end, never by a sequence check."""

from bnplace.lint.rules.rule import Rule

RULE = Rule(
    code="BNP000",
    name="syntax-error",
    summary="the file cannot be parsed",
    what="Reports a source file (or a notebook's code cell) that Python cannot parse, at the line "
         "of the syntax error. The other files, and a notebook's other cells, are still linted.",
    why="A file that does not parse cannot be checked for any other rule: saying so beats passing "
        "it silently. (Files that name no BatchNorm are only checked by Python's own parser, "
        "which is much faster than the full analysis.)",
    fix="Fix the syntax error; for notebooks, IPython magics (`%matplotlib inline`, `!pip ...`, "
        "`len?`) are understood and need no change.",
    valid=("model = Sequential([Dense(64), BatchNormalization()])\n",),
    invalid=("model = Sequential([Dense(64), BatchNormalization()]  # <- BNP000\n",),
    check=None,
)
