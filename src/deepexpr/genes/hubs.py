"""Hub scores per gene (network degree, reconstruction quality, embedding norm) and their recovery of true hubs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from deepexpr.errors import InputError


def weighted_degree(network: pd.DataFrame) -> pd.Series:
    """Mean edge weight of each gene to all others (self-edges excluded): the network's hub score."""
    weights = np.array(network, dtype=np.float64)
    np.fill_diagonal(weights, 0.0)
    return pd.Series(weights.sum(axis=1) / (len(weights) - 1), index=network.index, name="weighted_degree")


def reconstruction_hub_score(observed: np.ndarray, reconstructed: np.ndarray, genes) -> pd.Series:
    """siVAE's degree centrality: 1 - per-gene mean squared reconstruction error.

    A gene the low-dimensional model reconstructs well is explained by the shared latent
    structure, i.e. tied to many other genes.
    """
    observed, reconstructed = np.asarray(observed, dtype=np.float64), np.asarray(reconstructed, dtype=np.float64)
    if observed.shape != reconstructed.shape:
        raise InputError("reconstructed", f"shape {reconstructed.shape} differs from the data's {observed.shape}")
    mse = ((observed - reconstructed) ** 2).mean(axis=0)
    return pd.Series(1.0 - mse, index=pd.Index(genes), name="hub_reconstruction")


def norm_hub_score(embedding: pd.DataFrame) -> pd.Series:
    """The original's alternative centrality, -||v_g||: genes nearer the embedding's origin score higher."""
    return pd.Series(
        -np.linalg.norm(np.asarray(embedding, dtype=np.float64), axis=1), index=embedding.index, name="hub_norm"
    )


def hub_auroc(scores: pd.Series, hubs: pd.Series) -> float:
    """AUROC of ``scores`` (higher = more hub-like) for recovering the true hub flags (gene -> bool)."""
    hubs = pd.Series(hubs).astype(bool)
    common = scores.index.intersection(hubs.index)
    y = hubs.loc[common].to_numpy()
    if len(common) == 0 or y.all() or not y.any():
        raise InputError("hubs", "needs genes with both hub and non-hub flags shared with the scores")
    return float(roc_auc_score(y, scores.loc[common].to_numpy()))


def loading_norm_hub_score(loadings: pd.DataFrame) -> pd.Series:
    """+||loading_g|| as the hub score of a loading matrix without a centrality of its own (LDVAE,
    attribution loadings): the genes the latent factors drive most strongly score highest."""
    return pd.Series(
        np.linalg.norm(np.asarray(loadings, dtype=np.float64), axis=1), index=loadings.index, name="hub_loading_norm"
    )
