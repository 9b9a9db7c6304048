"""The base every model is built on: settings, AnnData registration, save/load, checkpoints, training plumbing."""

from deepexpr.models._base.model import BaseModel
from deepexpr.models._base.settings import resolve_settings
from deepexpr.models._base.training import ConvergenceMonitor, ProgressReporter, resolve_device, seed_everything

__all__ = [
    "BaseModel",
    "ConvergenceMonitor",
    "ProgressReporter",
    "resolve_device",
    "resolve_settings",
    "seed_everything",
]
