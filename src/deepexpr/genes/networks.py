"""Gene networks from expression: absolute Pearson correlation, and mutual information with CLR.

Both return a symmetric genes x genes DataFrame of non-negative weights with a zero diagonal,
the input of :func:`~deepexpr.genes.hubs.weighted_degree` and
:func:`~deepexpr.genes.neighbourhoods.network_neighbours`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.preprocessing import KBinsDiscretizer

from deepexpr.errors import InputError


def _frame(weights: np.ndarray, genes) -> pd.DataFrame:
    np.fill_diagonal(weights, 0.0)
    return pd.DataFrame(weights, index=pd.Index(genes), columns=pd.Index(genes))


def correlation_network(x: np.ndarray, genes) -> pd.DataFrame:
    """|Pearson correlation| between genes over cells (``x`` cells x genes, e.g. log-normalised)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False)
    return _frame(np.nan_to_num(np.abs(corr)), genes)  # constant genes: no edge


def mutual_information_network(x: np.ndarray, genes, n_bins: int = 8, use_clr: bool = True) -> pd.DataFrame:
    """Mutual information (nats) between genes' quantile-binned values; CLR-transformed by default.

    Equal-frequency bins (scikit-learn's KBinsDiscretizer) make every gene's marginal nearly
    uniform, so the estimate is not dominated by a few extreme cells; all pairs come from one
    matrix product of one-hot bin indicators. CLR (Faith et al. 2007) then keeps an edge only
    where it stands out against both genes' background MI.
    """
    x = np.asarray(x, dtype=np.float64)
    n_cells, n_genes = x.shape
    if n_cells < 2 * n_bins:
        raise InputError("n_bins", f"{n_cells} cells are too few for {n_bins} bins per gene")
    binner = KBinsDiscretizer(
        n_bins=n_bins, encode="onehot-dense", strategy="quantile", quantile_method="averaged_inverted_cdf"
    )
    with warnings.catch_warnings():
        # genes with many ties (zeros) get fewer bins; that is the right estimate, not a problem
        warnings.simplefilter("ignore", UserWarning)
        onehot = binner.fit_transform(x)
    sizes = [len(edges) - 1 for edges in binner.bin_edges_]
    owner = np.repeat(np.arange(n_genes), sizes)
    joint = onehot.T @ onehot / n_cells  # (sum of bins) x (sum of bins): p(bin_i, bin_j) for every pair
    marginal = np.diag(joint).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = joint * np.log(joint / np.outer(marginal, marginal))
    terms = np.nan_to_num(terms)
    # sum each gene-pair block of bins: MI_ij = sum_{a in i, b in j} p_ab log(p_ab / (p_a p_b))
    indicator = np.zeros((owner.size, n_genes))
    indicator[np.arange(owner.size), owner] = 1.0
    mi = indicator.T @ terms @ indicator
    np.fill_diagonal(mi, 0.0)
    return _frame(clr(mi) if use_clr else mi, genes)


def clr(mi: np.ndarray) -> np.ndarray:
    """Context likelihood of relatedness: sqrt(z_i^2 + z_j^2) of each MI against both genes' rows, negatives at 0."""
    mi = np.asarray(mi, dtype=np.float64).copy()
    off = ~np.eye(len(mi), dtype=bool)
    values = np.where(off, mi, np.nan)
    mean, sd = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
    sd[sd == 0] = 1.0
    z = np.maximum((mi - mean[:, None]) / sd[:, None], 0.0)
    return np.sqrt(z**2 + z.T**2)
