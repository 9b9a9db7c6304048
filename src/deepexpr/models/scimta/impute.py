"""ALRA-like low-rank "De-Zero" imputation (Linderman et al., Nat Commun 2022), the paper-only step of
scIMTA's extended mode (docs/models/scimta.md).

Written here because ALRA is an R package; the steps follow its paper: rank-k randomized SVD of the
log-normalised matrix (k from the gaps between singular values), per-gene threshold at the absolute
0.001-quantile of the gene's low-rank values (values below -> 0), nonzeros rescaled to the gene's
observed nonzero mean and sd, observed nonzeros restored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from deepexpr.errors import InputError


def choose_rank(singular_values: np.ndarray, tail: int = 80, n_sd: float = 6.0) -> int:
    """ALRA's rank: the last gap between consecutive singular values that exceeds the mean + 6 sd
    of the gaps in the tail of the spectrum (at least 2)."""
    gaps = -np.diff(singular_values)
    tail_gaps = gaps[-min(tail, len(gaps)) :]
    threshold = tail_gaps.mean() + n_sd * tail_gaps.std()
    large = np.flatnonzero(gaps > threshold)
    return int(max(2, large.max() + 1 if large.size else 2))


def alra(log_normalised, rank: int | None = None, max_rank: int = 100, quantile: float = 0.001, seed: int = 0) -> tuple[np.ndarray, int]:
    """Imputed cells x genes matrix (dense, log-normalised scale) and the rank used."""
    observed = log_normalised.toarray() if sp.issparse(log_normalised) else np.asarray(log_normalised, dtype=np.float64)
    if observed.ndim != 2 or min(observed.shape) < 3:
        raise InputError("alra", f"need a cells x genes matrix with at least 3 of each, got shape {observed.shape}")
    if not np.isfinite(observed).all() or (observed < 0).any():
        raise InputError("alra", "expected finite non-negative log-normalised values")
    n_components = min(max_rank, min(observed.shape) - 1)
    u, s, vt = randomized_svd(observed, n_components, random_state=seed)
    rank = choose_rank(s) if rank is None else min(int(rank), n_components)
    low_rank = (u[:, :rank] * s[:rank]) @ vt[:rank]
    threshold = np.abs(np.quantile(low_rank, quantile, axis=0))
    low_rank[low_rank <= threshold] = 0.0
    imputed = low_rank
    for gene in range(observed.shape[1]):
        kept, seen = imputed[:, gene] > 0, observed[:, gene] > 0
        if kept.sum() < 2 or seen.sum() < 2:
            continue
        values = imputed[kept, gene]
        spread = values.std()
        scale = observed[seen, gene].std() / spread if spread > 0 else 1.0
        imputed[kept, gene] = (values - values.mean()) * scale + observed[seen, gene].mean()
    np.maximum(imputed, 0.0, out=imputed)
    lost = (observed > 0) & (imputed == 0)
    imputed[lost] = observed[lost]
    return imputed, rank


def imputation_error(values: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Median per-gene Pearson r and mean squared error of ``values`` against ``truth``."""
    from deepexpr.metrics.truth import per_gene_pearson

    return {
        "median_gene_pearson": float(np.nanmedian(per_gene_pearson(values, truth))),
        "mse": float(np.mean((values - truth) ** 2)),
    }
