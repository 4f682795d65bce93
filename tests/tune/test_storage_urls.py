"""Storage URLs a user gets wrong: a server that never answers, and a password in the URL."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import bnplace
from bnplace.tune import storage as storage_module
from bnplace.tune.options import TuneInputError
from tests.tune.conftest import tiny_mlp


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_database_server_that_never_answers_fails_within_the_connect_timeout(
        tmp_path, monkeypatch):
    monkeypatch.setattr(storage_module, "CONNECT_TIMEOUT_S", 2)  # libpq's least
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # the kernel accepts connections; nobody ever answers them
    port = server.getsockname()[1]
    give_up = threading.Timer(20, server.close)  # without a time limit, the test would hang
    give_up.start()
    started = time.monotonic()
    try:
        with pytest.raises(TuneInputError, match="timeout expired"):
            bnplace.tune(tiny_mlp, storage=f"postgresql://user@127.0.0.1:{port}/db",
                         output=tmp_path, progress=False)
    finally:
        give_up.cancel()
        server.close()
    assert time.monotonic() - started < 10  # one try, not one per retry


def test_a_password_in_the_storage_url_is_not_shown(tmp_path):
    port = _closed_port()
    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(tiny_mlp, storage=f"postgresql://user:s3cret@127.0.0.1:{port}/db",
                     output=tmp_path, progress=False)
    assert str(refused.value).startswith(
        f"cannot open storage 'postgresql://user:***@127.0.0.1:{port}/db': OperationalError")
    assert "s3cret" not in str(refused.value)
