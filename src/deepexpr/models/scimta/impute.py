"""Low-rank dropout imputation with adaptive thresholding after ALRA (Linderman et al., Nat Commun
2022), the paper-only "De-Zero" step of scIMTA's extended mode (docs/models/scimta.md).

Written here because ALRA is an R package. Both variants share ALRA's first steps: rank-k randomized
SVD of the log-normalised matrix (k from the gaps between singular values) and a per-gene threshold
at the absolute 0.001-quantile of the gene's low-rank values (values below -> 0, kept as biological
zeros). Then:

- ``alra`` (the published method): every entry is replaced by its low-rank value, the non-zeros
  rescaled to the gene's observed non-zero mean and sd, and observed non-zeros the threshold removed
  are restored.
- ``zero_fill`` (default): observed non-zero values are kept as measured and only the zeros take the
  thresholded low-rank value, without rescaling. The rescaling assumes that the zeros a low-rank
  value lifts are technical and should look like the observed non-zeros; in sparse data most zeros
  are sampling zeros of lowly expressed genes, and lifting them to the non-zero mean overshoots (the
  evaluation in docs/decisions/scimta.md shows both variants side by side).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from deepexpr.errors import InputError

VARIANTS = ("zero_fill", "alra")


def choose_rank(singular_values: np.ndarray, tail: int = 80, n_sd: float = 6.0) -> int:
    """ALRA's rank: the last gap between consecutive singular values that exceeds the mean + 6 sd
    of the gaps in the tail of the spectrum (at least 2)."""
    gaps = -np.diff(singular_values)
    tail_gaps = gaps[-min(tail, len(gaps)) :]
    threshold = tail_gaps.mean() + n_sd * tail_gaps.std()
    large = np.flatnonzero(gaps > threshold)
    return int(max(2, large.max() + 1 if large.size else 2))


def low_rank_impute(
    log_normalised,
    variant: str = "zero_fill",
    rank: int | None = None,
    max_rank: int = 100,
    quantile: float = 0.001,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Imputed cells x genes matrix (dense, log-normalised scale) and the rank used."""
    if variant not in VARIANTS:
        raise InputError("scimta.imputation_variant", f"expected one of {VARIANTS}, got {variant!r}")
    observed = log_normalised.toarray() if sp.issparse(log_normalised) else np.array(log_normalised, dtype=np.float64)
    if observed.ndim != 2 or min(observed.shape) < 3:
        raise InputError("imputation input", f"need a cells x genes matrix with at least 3 of each, got shape {observed.shape}")
    if not np.isfinite(observed).all() or (observed < 0).any():
        raise InputError("imputation input", "expected finite non-negative log-normalised values")
    n_components = min(max_rank, min(observed.shape) - 1)
    u, s, vt = randomized_svd(observed, n_components, random_state=seed)
    rank = choose_rank(s) if rank is None else min(int(rank), n_components)
    low_rank = (u[:, :rank] * s[:rank]) @ vt[:rank]
    threshold = np.abs(np.quantile(low_rank, quantile, axis=0))
    low_rank[low_rank <= threshold] = 0.0
    seen = observed > 0
    if variant == "zero_fill":
        return np.where(seen, observed, low_rank), rank
    for gene in range(observed.shape[1]):
        kept = low_rank[:, gene] > 0
        if kept.sum() < 2 or seen[:, gene].sum() < 2:
            continue
        values = low_rank[kept, gene]
        spread = values.std()
        scale = observed[seen[:, gene], gene].std() / spread if spread > 0 else 1.0
        low_rank[kept, gene] = (values - values.mean()) * scale + observed[seen[:, gene], gene].mean()
    np.maximum(low_rank, 0.0, out=low_rank)
    lost = seen & (low_rank == 0)
    low_rank[lost] = observed[lost]
    return low_rank, rank


def imputation_error(values: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Median per-gene Pearson r and mean squared error of ``values`` against ``truth``."""
    from deepexpr.metrics.truth import per_gene_pearson

    return {
        "median_gene_pearson": float(np.nanmedian(per_gene_pearson(values, truth))),
        "mse": float(np.mean((values - truth) ** 2)),
    }
