"""The shared model base: settings, AnnData registration, save/load and resumable checkpoints.

A model subclasses :class:`BaseModel`, declares its settings table (``SWITCHES``,
``MODE_DEFAULTS``, ``EXTRA_SETTINGS``), its registration key and history columns, and provides
the hook :meth:`~BaseModel.fingerprint_parts`; :meth:`~BaseModel.trained_genes` and
:meth:`~BaseModel.saved_modules` default to ``self.genes`` and ``self.module``.

Checkpoints carry a fingerprint of the training data and the training length next to the
settings: a checkpoint whose data, settings or ``max_epochs`` differ from the run's is not
resumed (training starts over and replaces it), so a changed input never brings back a stale model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import torch

from deepexpr.errors import InputError
from deepexpr.io import atomic_path
from deepexpr.models._base.settings import resolve_settings

logger = logging.getLogger(__name__)


class BaseModel:
    """What every user-facing model shares; see the module docstring for what a subclass declares."""

    #: Name used in error messages (``<NAME>.<key>``).
    NAME: ClassVar[str]
    SWITCHES: ClassVar[Mapping[str, tuple]] = {}
    MODE_DEFAULTS: ClassVar[Mapping[str, Mapping]] = {}
    #: Settings accepted by the constructor beyond the table (documented by each model).
    EXTRA_SETTINGS: ClassVar[tuple[str, ...]] = ()
    #: ``adata.uns`` key of the ``setup_anndata`` registration.
    SETUP_KEY: ClassVar[str]
    HISTORY_COLUMNS: ClassVar[list[str]]
    CHECKPOINT_NAME: ClassVar[str] = "last.pt"

    config: dict
    setup: dict
    history: pd.DataFrame
    training_info: dict

    # ----------------------------------------------------------- settings
    @classmethod
    def resolve_settings(cls, mode: str, settings: Mapping) -> dict:
        """The mode's defaults with ``settings`` applied; see :func:`resolve_settings`."""
        return resolve_settings(cls.NAME, cls.SWITCHES, cls.MODE_DEFAULTS, mode, settings, cls.EXTRA_SETTINGS)

    # ------------------------------------------------------- registration
    # Registrations of .h5ad paths (streamed data has no uns to write to), per model class.
    _PATH_SETUPS: ClassVar[dict[str, dict]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._PATH_SETUPS = {}

    @classmethod
    def _store_registration(cls, adata: ad.AnnData | str | os.PathLike, setup: Mapping) -> None:
        if isinstance(adata, ad.AnnData):
            adata.uns[cls.SETUP_KEY] = dict(setup)
        else:
            cls._PATH_SETUPS[str(Path(adata).resolve())] = dict(setup)

    @classmethod
    def is_registered(cls, adata: ad.AnnData | str | os.PathLike) -> bool:
        if isinstance(adata, ad.AnnData):
            return cls.SETUP_KEY in adata.uns
        return str(Path(adata).resolve()) in cls._PATH_SETUPS

    @classmethod
    def registration(cls, adata: ad.AnnData | str | os.PathLike) -> dict:
        """The ``setup_anndata`` registration of ``adata`` (an InputError if there is none)."""
        if not cls.is_registered(adata):
            if isinstance(adata, ad.AnnData):
                raise InputError(
                    "AnnData", f"uns[{cls.SETUP_KEY!r}] missing; call {cls.__name__}.setup_anndata(adata) first"
                )
            raise InputError(str(adata), f"call {cls.__name__}.setup_anndata(path) first")
        if isinstance(adata, ad.AnnData):
            return dict(adata.uns[cls.SETUP_KEY])
        return dict(cls._PATH_SETUPS[str(Path(adata).resolve())])

    @classmethod
    def _setup_from_saved(cls, adata, setup: dict) -> None:
        """Register ``adata`` as the saved model was (subclasses adapt stored values)."""
        cls.setup_anndata(adata, **setup)

    # --------------------------------------------------------------- hooks
    def trained_genes(self) -> list[str]:
        """The genes the model was built on, in order (default: ``self.genes``)."""
        return [str(g) for g in self.genes]

    def saved_modules(self) -> dict[str, torch.nn.Module]:
        """The torch modules whose weights a model file holds, by attribute name (default: ``self.module``)."""
        return {"module": self.module}

    def fingerprint_parts(self) -> Iterable[np.ndarray]:
        """The training data as arrays: values (chunk by chunk for data on disk), genes, obs codes."""
        raise NotImplementedError

    @classmethod
    def _saved_extras(cls, state: dict) -> dict:
        """Constructor arguments that a model file holds outside its settings (e.g. given dispersions)."""
        return {}

    # --------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write settings, registration, genes, weights, history and training info (atomically)."""
        state = {
            "config": _plain(self.config),
            "setup": dict(self.setup),
            "genes": [str(g) for g in self.trained_genes()],
            "modules": {
                name: {k: v.detach().cpu() for k, v in module.state_dict().items()}
                for name, module in self.saved_modules().items()
            },
            "history": self.history.to_dict(orient="list"),
            "training_info": dict(self.training_info),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, adata: ad.AnnData | str | os.PathLike):
        """Rebuild a saved model on ``adata``, which must hold the same genes in the same order."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        if "modules" not in state:
            raise InputError(str(path), "written by an older deepexpr (no 'modules' entry); delete it and retrain")
        cls._setup_from_saved(adata, dict(state["setup"]))
        config = dict(state["config"])
        mode, seed = config.pop("mode"), config.pop("seed")
        model = cls(adata, mode=mode, seed=seed, **config, **cls._saved_extras(state))
        if [str(g) for g in model.trained_genes()] != state["genes"]:
            raise InputError(
                str(path), "the data's genes differ from those the model was trained on (same order expected)"
            )
        modules = model.saved_modules()
        for name, weights in state["modules"].items():
            modules[name].load_state_dict(weights)
            modules[name].eval()
        model.history = pd.DataFrame(state["history"], columns=cls.HISTORY_COLUMNS)
        model.training_info = dict(state["training_info"])
        return model

    # --------------------------------------------------------- checkpoints
    def data_fingerprint(self) -> str:
        """SHA-256 of the training data (:meth:`fingerprint_parts`) and the registration."""
        digest = hashlib.sha256(json.dumps(self.setup, sort_keys=True, default=str).encode())
        for part in self.fingerprint_parts():
            array = np.ascontiguousarray(part)
            if array.dtype == object:
                array = array.astype(str)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def _checkpoint_path(self, checkpoint_dir: str | os.PathLike | None) -> Path | None:
        return Path(checkpoint_dir) / self.CHECKPOINT_NAME if checkpoint_dir else None

    def _write_checkpoint(self, path: Path, fingerprint: str, max_epochs: int, payload: Mapping) -> None:
        """Save ``payload`` (the model's training state) with what a resume must match, and RNG states."""
        full = {
            "settings": _plain(self.config),
            "data": fingerprint,
            "max_epochs": int(max_epochs),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **payload,
        }
        with atomic_path(path) as tmp:
            torch.save(full, tmp)

    def _read_checkpoint(self, path: Path | None, fingerprint: str, max_epochs: int, device) -> dict | None:
        """The checkpoint's payload if it was written by this very run (data, settings and
        max_epochs all match), with the RNG states restored; otherwise None, and the stale
        checkpoint is removed so that training starts over and replaces it."""
        if path is None or not path.exists():
            return None
        payload = torch.load(path, map_location=device, weights_only=False)
        checks = [
            ("the training data changed", payload.get("data") != fingerprint),
            ("the settings changed", payload.get("settings") != _plain(self.config)),
            (f"max_epochs changed ({payload.get('max_epochs')} -> {max_epochs})", payload.get("max_epochs") != max_epochs),
        ]
        stale = [reason for reason, differs in checks if differs]
        if stale:
            logger.warning("not resuming %s: %s; training starts over", path, "; ".join(stale))
            path.unlink()
            return None
        torch.set_rng_state(payload["torch_rng"].cpu())
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in payload["cuda_rng"]])
        return payload


def _plain(config: Mapping) -> dict:
    """Settings as stored: tuples as lists, so a loaded file compares equal to a fresh config."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
