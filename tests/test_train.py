"""Shared training plumbing: device choice, seeding, stopping rule, progress lines."""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import pytest
import torch

from deepexpr.errors import InputError
from deepexpr.models._base.training import ConvergenceMonitor, ProgressReporter, resolve_device, seed_everything


def test_resolve_device_auto_and_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


def test_resolve_device_rejects_unknown_and_missing_cuda():
    with pytest.raises(InputError, match="device: expected one of"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="'cuda' requested"):
            resolve_device("cuda")


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    seed_everything(7)
    first = draw()
    seed_everything(7)
    second = draw()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])
    seed_everything(8)
    assert draw()[0] != first[0]


def test_monitor_stops_at_cap_without_tolerance():
    monitor = ConvergenceMonitor(max_epochs=5, tol=None, window=2)
    stops = [monitor.update(1.0) for _ in range(5)]
    assert stops == [False, False, False, False, True]
    assert not monitor.converged


def test_monitor_converges_on_a_flat_loss_only_after_min_epochs():
    monitor = ConvergenceMonitor(max_epochs=1000, tol=1e-4, window=10, min_epochs=50)
    epochs = 0
    while not monitor.update(100.0):
        epochs += 1
    assert monitor.converged
    assert epochs + 1 == 50


def test_monitor_keeps_going_while_loss_improves_and_stops_when_it_rises():
    improving = ConvergenceMonitor(max_epochs=300, tol=1e-4, window=10)
    losses = [1000.0 * 0.99**k for k in range(300)]
    stopped_at = next(k for k, loss in enumerate(losses, 1) if improving.update(loss))
    assert stopped_at == 300 and not improving.converged

    rising = ConvergenceMonitor(max_epochs=300, tol=1e-4, window=10)
    stopped_at = next(k for k in range(1, 301) if rising.update(100.0 + k))
    assert stopped_at == 20 and rising.converged


def test_monitor_rejects_non_finite_loss():
    monitor = ConvergenceMonitor(max_epochs=10)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        monitor.update(math.nan)


def test_progress_logs_every_n_epochs(caplog):
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress = ProgressReporter(total=10, desc="model", every=4, log=log, bar=False)
        for epoch in range(1, 8):
            progress.update(epoch, loss=1.5)
        progress.close(7, "converged", loss=1.5)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "model epoch 1/10 loss=1.5",
        "model epoch 4/10 loss=1.5",
        "model stopped at epoch 7 (converged) loss=1.5",
    ]
