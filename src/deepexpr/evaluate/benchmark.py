"""Scores that let the integration benchmark rank methods on simulated truth (docs/evaluation.md).

Biology kept (nested designs such as sim_covid, donors nested in conditions): a correction that
erases donor differences also erases the condition, which the scIB total rewards. Each run's
condition DE on donor pseudobulks (pyDESeq2 per cell type, the ``pseudobulk_corrected`` rule) is
scored against the simulated condition-affected genes by AUPRC. A run without corrected values
(Harmony, Scanorama) gets values from its embedding: each cell's log-normalised expression
averaged over its nearest neighbours in that embedding.

Explanation baseline: a plain per-gene Wilcoxon test between the levels of a covariate, scored by
the same AUROC as the Integrated-Gradients attributions of the GENEX critic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr.errors import InputError

#: Neighbours averaged when an embedding-only run's values are derived from its embedding.
EMBEDDING_NEIGHBOURS = 15


def values_from_embedding(embedding: np.ndarray, log_values, n_neighbors: int = EMBEDDING_NEIGHBOURS) -> np.ndarray:
    """Each cell's log-normalised values averaged over its ``n_neighbors`` nearest cells in ``embedding``
    (itself included): values that follow the method's neighbourhoods, for methods that output none."""
    from sklearn.neighbors import NearestNeighbors

    embedding = np.asarray(embedding, dtype=np.float32)
    n_cells = embedding.shape[0]
    if log_values.shape[0] != n_cells:
        raise InputError("integration run", f"embedding has {n_cells} cells, values {log_values.shape[0]}")
    k = min(int(n_neighbors), n_cells)
    _, neighbours = NearestNeighbors(n_neighbors=k).fit(embedding).kneighbors(embedding)
    # a sparse row-stochastic matrix: one matrix product averages every cell's neighbourhood
    weights = sp.csr_matrix(
        (np.full(n_cells * k, 1.0 / k, dtype=np.float32), neighbours.ravel(), np.arange(0, n_cells * k + 1, k)),
        shape=(n_cells, n_cells),
    )
    values = weights @ (log_values if sp.issparse(log_values) else np.asarray(log_values, dtype=np.float32))
    return np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float32)


def pseudobulk_gene_scores(table: pd.DataFrame) -> pd.Series:
    """Evidence per gene from a pseudobulk table (one row per cell type and gene): the mean over cell
    types of -log10 p (a gene untested in a cell type, p NaN, counts as p = 1)."""
    missing = [column for column in ("cell_type", "gene", "pvalue") if column not in table.columns]
    if missing:
        raise InputError("pseudobulk table", f"columns {missing} are missing")
    p = pd.to_numeric(table["pvalue"], errors="coerce").fillna(1.0).clip(lower=1e-300)
    evidence = -np.log10(p)
    return evidence.groupby(table["gene"].astype(str)).mean()


def biology_kept(table: pd.DataFrame, affected: pd.Series, genes) -> dict:
    """AUPRC of the pseudobulk evidence for the truly condition-affected genes among ``genes``.

    Genes of ``genes`` absent from the table (no cell type had donors enough) score 0. Returns
    the AUPRC, its chance level (the share of affected genes) and the counts behind them.
    """
    from sklearn.metrics import average_precision_score

    genes = pd.Index(genes).astype(str)
    flags = pd.Series(affected).astype(bool)
    flags.index = flags.index.astype(str)
    missing = genes.difference(flags.index)
    if len(missing):
        raise InputError("truth", f"{len(missing)} genes have no condition_affected flag, e.g. {list(missing[:3])}")
    y = flags.loc[genes].to_numpy()
    scores = pseudobulk_gene_scores(table).reindex(genes).fillna(0.0).to_numpy() if len(table) else np.zeros(len(genes))
    n_types = int(table["cell_type"].nunique()) if len(table) else 0
    if not y.any() or y.all() or n_types == 0:
        auprc = np.nan
    else:
        auprc = float(average_precision_score(y, scores))
    return {
        "biology_kept_auprc": auprc,
        "chance_auprc": float(y.mean()),
        "n_genes": int(len(genes)),
        "n_affected": int(y.sum()),
        "n_cell_types": n_types,
    }


def wilcoxon_gene_scores(log_values, levels, genes) -> pd.Series:
    """Per-gene evidence that a covariate changes expression: the largest |z| of scanpy's Wilcoxon
    rank-sum test of each level against the rest (no model, one test per gene and level)."""
    import anndata as ad
    import scanpy as sc

    levels = pd.Series(levels).astype(str)
    if levels.nunique() < 2:
        raise InputError("explanation baseline", f"the covariate has {levels.nunique()} level(s); need at least 2")
    adata = ad.AnnData(
        X=log_values if sp.issparse(log_values) else np.asarray(log_values, dtype=np.float32),
        obs=pd.DataFrame({"level": pd.Categorical(levels.to_numpy())}),
    )
    adata.var_names = [str(i) for i in range(adata.n_vars)]
    sc.tl.rank_genes_groups(adata, "level", method="wilcoxon", n_genes=adata.n_vars, use_raw=False)
    frame = sc.get.rank_genes_groups_df(adata, group=None)
    scores = frame.assign(z=frame["scores"].abs()).groupby("names")["z"].max()
    return pd.Series(scores.reindex(adata.var_names).fillna(0.0).to_numpy(), index=pd.Index(genes).astype(str))
