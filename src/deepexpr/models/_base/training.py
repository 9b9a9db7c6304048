"""Training plumbing shared by every model: device choice, seeding, stopping, progress.

Kept free of model code so each model's ``train()`` is a plain loop that
reads like the method description, and so the workflow's rule logs look the
same for every model (the workflow routes :mod:`logging` to the rule log).
"""

from __future__ import annotations

import logging
import math
import random
import sys
from collections import deque

import numpy as np
import torch

from deepexpr.errors import InputError

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str = "auto") -> torch.device:
    """Map the config's ``device`` value to a torch device.

    ``auto`` picks CUDA when present so the same config runs on a laptop and
    on a GPU node; asking for ``cuda`` without one is an error rather than a
    silent fallback, because the user expected GPU speed.
    """
    if spec not in DEVICE_CHOICES:
        raise InputError("device", f"expected one of {list(DEVICE_CHOICES)}, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "'cuda' requested but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) and ask torch for deterministic kernels.

    ``warn_only`` keeps CPU runs bit-reproducible while a CUDA op without a deterministic
    kernel only warns instead of aborting a long GPU run.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class ConvergenceMonitor:
    """Decide when to stop: the loss has stopped improving, or the epoch cap is reached.

    Converged means the mean loss of the last ``window`` epochs is lower than the
    mean of the ``window`` epochs before by less than ``tol`` relative (a loss
    that rises also counts as converged). Window means, not single epochs,
    because a VAE loss evaluated with sampled latents jitters from epoch to
    epoch. Nothing is checked before ``min_epochs`` (e.g. while a KL weight is
    still warming up and the loss is meant to change). With ``tol=None`` it only
    enforces the cap (fixed-length training).
    """

    def __init__(self, max_epochs: int, tol: float | None = 1e-4, window: int = 50, min_epochs: int = 0):
        if max_epochs < 1 or window < 1:
            raise ValueError("max_epochs and window must be >= 1")
        self.max_epochs, self.tol, self.window, self.min_epochs = max_epochs, tol, window, min_epochs
        self._recent: deque[float] = deque(maxlen=2 * window)
        self.epochs = 0
        self.converged = False

    def update(self, loss: float) -> bool:
        """Record one epoch's loss; return True when training should stop."""
        self.epochs += 1
        self._recent.append(float(loss))
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at epoch {self.epochs}")
        if self.tol is not None and self.epochs >= self.min_epochs and len(self._recent) == 2 * self.window:
            values = list(self._recent)
            before = sum(values[: self.window]) / self.window
            after = sum(values[self.window :]) / self.window
            self.converged = before - after <= self.tol * abs(before)
        return self.converged or self.epochs >= self.max_epochs

    def state(self) -> dict:
        """What a checkpoint needs to continue the same decision after a restart."""
        return {"recent": list(self._recent), "epochs": self.epochs, "converged": self.converged}

    def restore(self, state: dict) -> None:
        self._recent.clear()
        self._recent.extend(state["recent"])
        self.epochs, self.converged = int(state["epochs"]), bool(state["converged"])


class ProgressReporter:
    """Log one line every ``every`` epochs; also draw a tqdm bar when stderr is a terminal.

    The log lines are what a Snakemake user sees in the rule log; the bar only
    helps someone watching a notebook or a shell.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        every: int = 100,
        log: logging.Logger | None = None,
        bar: bool | None = None,
    ):
        self.total, self.desc, self.every = total, desc, max(1, every)
        self.log = log or logger
        show_bar = sys.stderr.isatty() if bar is None else bar
        self._bar = None
        if show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, leave=False)

    def update(self, epoch: int, **metrics: float) -> None:
        """Report that ``epoch`` (1-based) finished with ``metrics``."""
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        if epoch == 1 or epoch % self.every == 0:
            values = " ".join(f"{k}={v:.6g}" for k, v in metrics.items())
            self.log.info("%s epoch %d/%d %s", self.desc, epoch, self.total, values)

    def close(self, epoch: int, reason: str, **metrics: float) -> None:
        """Log the final line (why training stopped) and drop the bar."""
        if self._bar is not None:
            self._bar.close()
        values = " ".join(f"{k}={v:.6g}" for k, v in metrics.items())
        self.log.info("%s stopped at epoch %d (%s) %s", self.desc, epoch, reason, values)
