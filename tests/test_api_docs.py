"""Every python block of docs/api.md runs, in order, in one namespace: the page stays true."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models: more threads only spin-wait on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_api_page_blocks_run(monkeypatch: pytest.MonkeyPatch, one_torch_thread: None) -> None:
    monkeypatch.chdir(REPO)
    text = PAGE.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) == text.count("```python") > 0  # no block left unrun by the pattern
    namespace: dict[str, object] = {"__name__": "api_docs"}
    for block in blocks:
        line = text.count("\n", 0, block.start()) + 2
        exec(compile(block[1], f"{PAGE}:{line}", "exec"), namespace)
