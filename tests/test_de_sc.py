"""Single-cell DE on integration outputs: Wilcoxon per cell type, pseudobulk pyDESeq2."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepexpr.de.singlecell import (
    PSEUDOBULK_COLUMNS,
    WILCOXON_COLUMNS,
    counts_from_corrected,
    pseudobulk_deseq2,
    wilcoxon_by_cell_type,
)
from deepexpr.errors import InputError


def _cells(seed: int = 0) -> ad.AnnData:
    """8 donors (4 severe, 4 mild) x 2 cell types; gene g0 up 4x in severe T cells, g1 up in all B cells.

    Donor d7 has only 5 B cells, so B cells keep 3 severe donors with ≥10 cells.
    """
    rng = np.random.default_rng(seed)
    rows, counts = [], []
    n_genes = 30
    for donor in range(8):
        condition = "severe" if donor < 4 else "mild"
        for cell_type, n_cells in (("T", 40), ("B", 5 if donor == 7 else 30)):
            means = np.full((n_cells, n_genes), 5.0)
            if cell_type == "T" and condition == "severe":
                means[:, 0] *= 4
            if cell_type == "B":
                means[:, 1] *= 6
            counts.append(rng.negative_binomial(10, 10 / (10 + means)))
            rows += [(f"d{donor}", condition, cell_type)] * n_cells
    counts = np.vstack(counts).astype(np.float32)
    obs = pd.DataFrame(rows, columns=["donor", "condition", "cell_type"], index=[f"c{i}" for i in range(len(rows))])
    obs["n_counts"] = counts.sum(axis=1)
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))
    adata.layers["counts"] = adata.X.copy()
    adata.layers["corrected"] = np.log1p(counts / obs["n_counts"].to_numpy()[:, None] * 1e4).astype(np.float32)
    return adata


@pytest.fixture(scope="module")
def cells() -> ad.AnnData:
    return _cells()


def test_wilcoxon_by_cell_type_format_and_calls(cells):
    # log1p of raw counts: no normalisation, so only the planted genes differ between cell types.
    log_counts = np.log1p(cells.layers["counts"].toarray())
    table = wilcoxon_by_cell_type((log_counts, cells.obs, cells.var_names), "genex_corrected_seed0")
    assert list(table.columns) == WILCOXON_COLUMNS
    assert len(table) == 2 * cells.n_vars and set(table["cell_type"]) == {"T", "B"}
    assert (table["run"] == "genex_corrected_seed0").all()
    called = table[table["called"]]
    assert set(called["gene"]) == {"g0", "g1"}  # B marker g1; g0 (up in severe T cells) marks T cells
    b_marker = table.set_index(["cell_type", "gene"]).loc[("B", "g1")]
    assert b_marker["score"] > 0 and b_marker["logfoldchange"] > 1 and b_marker["pval_adj"] < 1e-10
    assert ((table["pval_adj"] >= table["pval"]) | table["pval_adj"].eq(1)).all()
    # The same test from an integration AnnData's corrected layer.
    run = ad.AnnData(obs=cells.obs, var=cells.var)
    run.layers["corrected"] = log_counts
    pd.testing.assert_frame_equal(table, wilcoxon_by_cell_type(run, "genex_corrected_seed0"))


def test_wilcoxon_min_in_group_fraction_blocks_calls(cells):
    sparse = cells.copy()
    sparse.layers["corrected"][:, 1] = 0
    b_cells = np.flatnonzero(sparse.obs["cell_type"] == "B")
    sparse.layers["corrected"][b_cells[: len(b_cells) // 5], 1] = 5.0  # a strong marker in only 20 % of B cells
    table = wilcoxon_by_cell_type(sparse, "x").set_index(["cell_type", "gene"])
    assert table.loc[("B", "g1"), "pval_adj"] < 0.05 and table.loc[("B", "g1"), "pct_in"] < 0.25
    assert not table.loc[("B", "g1"), "called"]


def test_wilcoxon_needs_values(cells):
    with pytest.raises(InputError, match="layers\\['missing'\\]"):
        wilcoxon_by_cell_type(cells, "x", layer="missing")


def test_pseudobulk_deseq2_finds_the_condition_gene_and_skips_thin_cell_types(cells, caplog):
    with caplog.at_level(logging.INFO, logger="deepexpr.de.singlecell"):
        table = pseudobulk_deseq2(cells, "cell_type", "donor", "condition", test="severe", reference="mild", run="raw")
    assert list(table.columns) == PSEUDOBULK_COLUMNS
    assert set(table["cell_type"]) == {"B", "T"} and len(table) == 2 * cells.n_vars
    assert (table["contrast"] == "condition: severe vs mild").all()
    t_cells = table[table["cell_type"] == "T"].set_index("gene")
    assert t_cells.loc["g0", "padj"] < 1e-3 and t_cells.loc["g0", "log2FoldChange"] > 1
    assert (t_cells.drop(index="g0")["padj"].dropna() > 0.01).all()
    # With 20 cells needed, B cells keep no donor: skipped and logged.
    with caplog.at_level(logging.INFO, logger="deepexpr.de.singlecell"):
        strict = pseudobulk_deseq2(cells, "cell_type", "donor", "condition", "severe", "mild", min_cells=35)
    assert set(strict["cell_type"]) == {"T"} and "skip B" in caplog.text


def test_pseudobulk_on_corrected_values_back_transforms_to_counts(cells):
    approx = counts_from_corrected(cells.layers["corrected"], cells.obs["n_counts"].to_numpy())
    np.testing.assert_allclose(approx, cells.layers["counts"].toarray(), atol=0.5)
    table = pseudobulk_deseq2(
        cells, "cell_type", "donor", "condition", "severe", "mild", values=cells.layers["corrected"], run="genex"
    )
    assert (table["run"] == "genex").all()
    t_cells = table[table["cell_type"] == "T"].set_index("gene")
    assert t_cells.loc["g0", "padj"] < 1e-3


def test_pseudobulk_rejects_donors_in_two_conditions(cells):
    mixed = cells.copy()
    mixed.obs.loc[mixed.obs_names[0], "condition"] = "mild"  # d0 is severe
    with pytest.raises(InputError, match="more than one 'condition'"):
        pseudobulk_deseq2(mixed, "cell_type", "donor", "condition", "severe", "mild")
