"""Turn the library's input errors into one-line CLI errors with exit status 2."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from bnplace.loading import SpecError


class InputError(click.ClickException):
    """A usage or input error: printed on one line, exit status 2."""

    exit_code = 2


@contextlib.contextmanager
def reported_as_usage_errors(*extra: type[Exception]) -> Iterator[None]:
    """Inside this block a SpecError (or one of ``extra``) becomes ``Error: ...`` and exit 2."""
    try:
        yield
    except (SpecError, *extra) as err:
        raise InputError(str(err)) from err
