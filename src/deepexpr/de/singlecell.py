"""Single-cell differential expression on integration outputs (GENEX DE; docs/models/genex.md, docs/evaluation.md).

Two views: Wilcoxon rank-sum tests of each cell type against the rest on a run's corrected
values (how the GENEX notebooks call DE genes), and pseudobulk pyDESeq2 per cell type with donors
as replicates (the statistically sound comparison for a condition such as COVID severity).
"""

from __future__ import annotations

import logging
import time
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr.de.bulk import run_deseq2
from deepexpr.errors import InputError

logger = logging.getLogger(__name__)

#: Column order of de/wilcoxon_{run}.tsv.
WILCOXON_COLUMNS = [
    "run",
    "cell_type",
    "gene",
    "score",
    "logfoldchange",
    "pval",
    "pval_adj",
    "pct_in",
    "pct_out",
    "called",
]

#: Column order of de/pseudobulk_{run}.tsv.
PSEUDOBULK_COLUMNS = ["run", "cell_type", "contrast", "gene", "baseMean", "log2FoldChange", "pvalue", "padj"]


def _run_values(run_adata, cell_type_key: str, layer: str) -> tuple[np.ndarray, pd.DataFrame, pd.Index]:
    if isinstance(run_adata, ad.AnnData):
        if layer in run_adata.layers:
            values = run_adata.layers[layer]
        elif layer == "X" and run_adata.X is not None:
            values = run_adata.X
        else:
            raise InputError("integration run", f"layers[{layer!r}] is missing (Wilcoxon DE needs corrected values)")
        obs, genes = run_adata.obs, run_adata.var_names
    else:
        values, obs, genes = run_adata
    values = np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float32)
    genes = pd.Index(genes).astype(str)
    if values.shape != (len(obs), len(genes)):
        raise InputError("integration run", f"values have shape {values.shape}, expected {(len(obs), len(genes))}")
    if cell_type_key not in obs:
        raise InputError("integration run", f"obs has no {cell_type_key!r} column")
    return values, obs, genes


def wilcoxon_by_cell_type(
    run_adata,
    run: str,
    cell_type_key: str = "cell_type",
    layer: str = "corrected",
    alpha: float = 0.05,
    min_in_group_fraction: float = 0.25,
) -> pd.DataFrame:
    """Wilcoxon test of each cell type vs all other cells, one row per (cell type, gene).

    ``run_adata`` is an integration AnnData (``layers[layer]``; ``layer="X"`` uses X) or a tuple
    (values, obs, genes). Bonferroni over genes within a cell type (scanpy). A gene is ``called``
    when pval_adj < ``alpha`` and at least ``min_in_group_fraction`` of the cell type's cells have
    a nonzero value (scanpy's expression fraction; ``pct_in``/``pct_out`` are those fractions).
    ``logfoldchange`` is scanpy's, which assumes log1p values.
    """
    import scanpy as sc

    values, obs, genes = _run_values(run_adata, cell_type_key, layer)
    cell_types = obs[cell_type_key].astype(str)
    sizes = cell_types.value_counts()
    testable = sorted(sizes.index[sizes >= 2])
    if len(sizes) < 2 or not testable:
        raise InputError("integration run", f"obs[{cell_type_key!r}] needs ≥2 cell types with ≥2 cells each")
    groups = pd.DataFrame({"group": pd.Categorical(cell_types.to_numpy())}, index=obs.index.astype(str))
    data = ad.AnnData(values, obs=groups)
    data.var_names = genes
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # log fold changes of non-log values
        sc.tl.rank_genes_groups(
            data,
            groupby="group",
            groups=testable,
            reference="rest",
            method="wilcoxon",
            corr_method="bonferroni",
            use_raw=False,
            n_genes=data.n_vars,
            pts=True,
        )
    table = sc.get.rank_genes_groups_df(data, group=None)
    if "group" not in table:  # a single tested group comes back without its name
        table.insert(0, "group", testable[0])
    table = table.rename(
        columns={
            "group": "cell_type",
            "names": "gene",
            "scores": "score",
            "logfoldchanges": "logfoldchange",
            "pvals": "pval",
            "pvals_adj": "pval_adj",
            "pct_nz_group": "pct_in",
            "pct_nz_reference": "pct_out",
        }
    )
    table["run"] = run
    table["cell_type"] = table["cell_type"].astype(str)
    table["called"] = (table["pval_adj"] < alpha) & (table["pct_in"] >= min_in_group_fraction)
    logger.info(
        "Wilcoxon %s: %d cell types x %d genes, %d calls (%d distinct genes), %.1f s",
        run,
        len(testable),
        data.n_vars,
        int(table["called"].sum()),
        table.loc[table["called"], "gene"].nunique(),
        time.perf_counter() - started,
    )
    return table[WILCOXON_COLUMNS].reset_index(drop=True)


def counts_from_corrected(values: np.ndarray, library_size: np.ndarray, target_sum: float = 1e4) -> np.ndarray:
    """Approximate counts from corrected log1p(normalize_total) values: round(expm1(v) * n_counts / 1e4).

    An approximation: it assumes the corrected values are still log1p of counts per ``target_sum``
    with each cell's original library size; negative values (e.g. ComBat) are clipped to zero.
    """
    counts = np.expm1(np.clip(np.asarray(values, dtype=np.float64), 0, None)) * (library_size[:, None] / target_sum)
    return np.rint(counts)


def pseudobulk_deseq2(
    adata: ad.AnnData,
    cell_type_key: str,
    donor_key: str,
    condition_key: str,
    test: str,
    reference: str,
    min_cells: int = 10,
    values: np.ndarray | None = None,
    run: str = "raw",
    n_cpus: int = 1,
) -> pd.DataFrame:
    """pyDESeq2 on donor pseudobulks, per cell type, design ~condition (test vs reference).

    Counts (``layers["counts"]``, or ``values`` turned back into approximate counts with
    :func:`counts_from_corrected` and obs ``n_counts``) are summed per donor x cell type over
    donors with ≥ ``min_cells`` cells of that type. Each donor must belong to one condition.
    Cell types with fewer than 2 such donors in the test or the reference level are skipped
    (logged). Wald p-values with Cook's filtering, no LFC shrinkage.
    """
    source = f"pseudobulk DE ({run})"
    for key in (cell_type_key, donor_key, condition_key):
        if key not in adata.obs:
            raise InputError(source, f"obs has no {key!r} column")
    if values is None:
        if "counts" not in adata.layers:
            raise InputError(source, "layers['counts'] is missing")
        counts = adata.layers["counts"]
        counts = sp.csr_matrix(counts) if sp.issparse(counts) else np.asarray(counts)
    else:
        if "n_counts" not in adata.obs:
            raise InputError(source, "obs['n_counts'] (library sizes) is needed to turn corrected values into counts")
        if np.shape(values) != adata.shape:
            raise InputError(source, f"values have shape {np.shape(values)}, expected {adata.shape}")
        counts = counts_from_corrected(values, adata.obs["n_counts"].to_numpy(dtype=float))
    obs = adata.obs[[cell_type_key, donor_key, condition_key]].astype(str)
    donor_conditions = obs.groupby(donor_key, observed=True)[condition_key].nunique()
    if (donor_conditions > 1).any():
        mixed = sorted(donor_conditions.index[donor_conditions > 1])[:5]
        raise InputError(source, f"donors {mixed} appear under more than one {condition_key!r} level")
    genes = pd.Index(adata.var_names).astype(str)
    contrast_label = f"{condition_key}: {test} vs {reference}"
    tables = []
    for cell_type in sorted(obs[cell_type_key].unique()):
        in_type = (obs[cell_type_key] == cell_type).to_numpy()
        per_donor = obs[in_type].groupby(donor_key, observed=True).size()
        donors = sorted(per_donor.index[per_donor >= min_cells])
        donor_condition = obs[in_type].drop_duplicates(donor_key).set_index(donor_key)[condition_key].reindex(donors)
        n_test, n_reference = int((donor_condition == test).sum()), int((donor_condition == reference).sum())
        if n_test < 2 or n_reference < 2:
            logger.info(
                "pseudobulk %s: skip %s (%d %s and %d %s donors with ≥%d cells; 2 each needed)",
                run,
                cell_type,
                n_test,
                test,
                n_reference,
                reference,
                min_cells,
            )
            continue
        donors = [d for d in donors if donor_condition[d] in (test, reference)]
        sums = np.vstack(
            [
                np.asarray(counts[np.flatnonzero(in_type & (obs[donor_key] == d).to_numpy())].sum(axis=0)).ravel()
                for d in donors
            ]
        )
        bulk = ad.AnnData(
            X=sums,
            obs=pd.DataFrame({condition_key: donor_condition[donors].to_numpy()}, index=donors),
            var=pd.DataFrame({"symbol": genes}, index=genes),
        )
        bulk.layers["counts"] = np.rint(sums).astype(np.int64)
        contrast = {
            "name": f"{cell_type} {contrast_label}",
            "design": f"~{condition_key}",
            "factor": condition_key,
            "test": test,
            "reference": reference,
        }
        result = run_deseq2(bulk, contrast, n_cpus=n_cpus, shrink=False)
        tables.append(
            pd.DataFrame(
                {
                    "run": run,
                    "cell_type": cell_type,
                    "contrast": contrast_label,
                    "gene": result["gene_id"].to_numpy(),
                    "baseMean": result["base_mean"].to_numpy(),
                    "log2FoldChange": result["log2fc"].to_numpy(),
                    "pvalue": result["pvalue"].to_numpy(),
                    "padj": result["padj"].to_numpy(),
                }
            )
        )
    if not tables:
        logger.warning("pseudobulk %s: no cell type had 2 donors per level; empty table", run)
        return pd.DataFrame(columns=PSEUDOBULK_COLUMNS)
    return pd.concat(tables, ignore_index=True)[PSEUDOBULK_COLUMNS]
