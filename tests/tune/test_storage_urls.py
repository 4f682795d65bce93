"""Storage URLs a user gets wrong: a server that never answers, a password in the URL, no
PostgreSQL driver installed."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time

import pytest

import bnplace
from bnplace.tune import storage as storage_module
from bnplace.tune.options import TuneInputError
from tests.tune.conftest import tiny_mlp


needs_driver = pytest.mark.skipif(
    not any(importlib.util.find_spec(name) for name in ("psycopg", "psycopg2")),
    reason="no PostgreSQL driver: pip install 'bnplace[distributed]'")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_driver
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


@needs_driver
def test_a_password_in_the_storage_url_is_not_shown(tmp_path):
    port = _closed_port()
    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(tiny_mlp, storage=f"postgresql://user:s3cret@127.0.0.1:{port}/db",
                     output=tmp_path, progress=False)
    assert str(refused.value).startswith(
        f"cannot open storage 'postgresql://user:***@127.0.0.1:{port}/db': OperationalError")
    assert "s3cret" not in str(refused.value)


def test_without_a_postgresql_driver_the_error_names_the_extra_to_install(tmp_path, monkeypatch):
    installed = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None
                        if name in ("psycopg", "psycopg2") else installed(name, *rest))
    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(tiny_mlp, storage="postgresql://user:s3cret@db.example/db",
                     output=tmp_path, progress=False)
    assert str(refused.value) == (
        "cannot open storage 'postgresql://user:***@db.example/db': no PostgreSQL driver is "
        "installed; pip install 'bnplace[distributed]' (psycopg2-binary) or psycopg")
    assert not (tmp_path / "results.json").exists()
