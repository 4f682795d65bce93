"""Turn the library's input errors into one-line CLI errors with exit status 2."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from bnplace.loading import SpecError


PYTHON_ONLY_ARGUMENTS = ("leaf_modules=", "concrete_args=")


class InputError(click.ClickException):
    """A usage or input error: printed on one line, exit status 2."""

    exit_code = 2


def for_the_command_line(message: str) -> str:
    """``message``, saying so when it suggests arguments that only the Python API takes (the
    graph pass's hint when a model does not trace), so nobody looks for such an option."""
    if any(argument in message for argument in PYTHON_ONLY_ARGUMENTS):
        return (f"{message} (leaf_modules= and concrete_args= are arguments of the Python API: "
                "bnplace.rewrite(), bnplace.find_chains(); no command-line option takes them; "
                "rewrite, check and export take --input-shape for example inputs)")
    return message


@contextlib.contextmanager
def reported_as_usage_errors(*extra: type[Exception]) -> Iterator[None]:
    """Inside this block a SpecError (or one of ``extra``) becomes ``Error: ...`` and exit 2."""
    try:
        yield
    except (SpecError, *extra) as err:
        raise InputError(for_the_command_line(str(err))) from err
