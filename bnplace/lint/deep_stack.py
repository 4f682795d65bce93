"""Deep source must not kill the process: linting runs on a thread with a large stack.

libcst's native parser recurses on the C stack once per level of nesting. On a main thread's
usual 8 MiB it overflows near 6,000 terms in one expression (``x = 1+1+...+1``) or 1,300 nested
calls (``f(f(f(...)))``), and the process dies of a segfault: no exception, so every other file of
the run was lost with it. libcst's visitors then recurse in Python, five to ten frames a level,
past Python's default limit of 1,000 frames at a 500-term ``"a" + "a" + ...``.

So the work runs on a worker thread with a 256 MiB stack (address space reserved, not memory
used: pages are only touched as deep as the recursion goes), and Python's recursion limit is
raised to 100,000 frames while it runs, which that stack holds on every Python the project
supports. A source deeper still raises RecursionError, which callers report as "nested too
deeply". libcst's parser is slow on such depths (about 15 s for 1,300 nested calls) but finishes.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

STACK_SIZE = 256 * 1024 * 1024
RECURSION_LIMIT = 100_000

_P = ParamSpec("_P")
_R = TypeVar("_R")
_state = threading.local()  # ``deep`` is True on a thread that already runs deep


def on_deep_stack(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """``function`` run on a fresh thread with a large stack and a raised recursion limit (both
    put back after); its result returned, its exception raised here. A call made from such a
    thread runs in place."""

    @functools.wraps(function)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if getattr(_state, "deep", False):
            return function(*args, **kwargs)
        outcome: list = []

        def work() -> None:
            _state.deep = True
            try:
                outcome.append((True, function(*args, **kwargs)))
            except BaseException as err:  # noqa: BLE001 - handed to the caller as it is
                outcome.append((False, err))

        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, RECURSION_LIMIT))
        try:
            thread = threading.Thread(target=work, name="bnplace-lint", daemon=True)
            previous_size = threading.stack_size(STACK_SIZE)
            try:
                thread.start()
            finally:
                threading.stack_size(previous_size)
            thread.join()
        finally:
            sys.setrecursionlimit(previous_limit)
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return value

    return run
