"""A ``--data`` spec for worker tests: digits, handed out only once every worker has asked.

Each worker leaves a file in ``$BNPLACE_TEST_BARRIER`` and waits until
``$BNPLACE_TEST_WORKERS`` files are there, so the workers start training together: a worker
that is ready first cannot take a whole small study while the other is still importing torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from torch import nn

from bnplace.tune.data import load_data

BARRIER_SECONDS = 300


def digits():
    folder = Path(os.environ["BNPLACE_TEST_BARRIER"])
    workers = int(os.environ["BNPLACE_TEST_WORKERS"])
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + BARRIER_SECONDS
    while len(list(folder.iterdir())) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other workers never reached {folder}")
        time.sleep(0.05)
    data = load_data("digits", nn.Linear(64, 10))  # as vectors
    return ((data.train.inputs, data.train.targets), (data.val.inputs, data.val.targets))
