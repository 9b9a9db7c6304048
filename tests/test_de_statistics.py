"""DE statistics side by side: calibration at nominal FDRs, agreement with pyDESeq2, dispersion vs truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepexpr.errors import InputError
from deepexpr.evaluate.de import de_statistics_table, dispersion_truth_table

CONTRAST = {"name": "b_vs_a", "design": "~group", "factor": "group", "test": "b", "reference": "a"}
GENES = [f"g{i}" for i in range(10)]


def tables():
    """10 genes, g0-g3 truly DE; DESeq2 calls g0-g2 and g4 at 5 % (g4 false), g0-g2 at 1 %."""
    truth = pd.DataFrame({"gene_id": GENES, "lfc__group__b": [1.0, -2.0, 0.3, 1.5] + [0.0] * 6})
    padj = [0.001, 0.002, 0.005, 0.2, 0.03, 0.5, 0.6, 0.7, 0.8, np.nan]
    deseq2 = pd.DataFrame(
        {
            "gene_id": GENES,
            "log2fc": [1.1, -1.9, 0.4, 1.2, 0.5, 0, 0.1, -0.1, 0.05, 0],
            "padj": padj,
            "pvalue": [p / 10 if p == p else np.nan for p in padj],
        }
    )
    # Seed 0 and seed 1 disagree on g3 and g5; the pooled column is their average.
    prob_seed0 = np.array([1.0, 1.0, 0.99, 0.99, 0.2, 0.97, 0.0, 0.0, 0.0, 0.0])
    prob_seed1 = np.array([1.0, 1.0, 0.99, 0.50, 0.2, 0.10, 0.0, 0.0, 0.0, 0.0])
    generative = pd.DataFrame(
        {
            "gene_id": GENES,
            "lfc_mean": deseq2["log2fc"],
            "prob_de": (prob_seed0 + prob_seed1) / 2,
            "lfc_mean_seed0": deseq2["log2fc"],
            "lfc_mean_seed1": deseq2["log2fc"],
            "prob_de_seed0": prob_seed0,
            "prob_de_seed1": prob_seed1,
        }
    )
    return deseq2, generative, truth


def test_calls_and_observed_fdr_at_each_nominal_level():
    deseq2, generative, truth = tables()
    table = de_statistics_table(deseq2, {"nbvae": generative}, truth, CONTRAST).set_index(["method", "nominal_fdr"])
    assert list(table.index.get_level_values("nominal_fdr").unique()) == [0.01, 0.05, 0.10]
    at5 = table.loc[("deseq2", 0.05)]
    assert at5["n_called"] == 4 and at5["observed_fdr"] == pytest.approx(1 / 4) and at5["tpr"] == pytest.approx(3 / 4)
    assert table.loc[("deseq2", 0.01), "n_called"] == 3 and table.loc[("deseq2", 0.01), "observed_fdr"] == 0
    # Pooled posterior: expected FDR of the top genes by P(DE) 1, 1, .99, .745, .535 ... -> 3 calls at 1 %.
    assert table.loc[("nbvae", 0.01), "n_called"] == 3
    # Per seed at 10 %: seed 0 calls g0-g3 and g5 (one false), seed 1 calls g0-g2.
    row = table.loc[("nbvae", 0.10)]
    assert row["n_seeds"] == 2
    assert row["n_called_seed_mean"] == pytest.approx(4.0) and row["n_called_seed_sd"] == pytest.approx(np.sqrt(2))
    assert row["observed_fdr_seed_mean"] == pytest.approx(0.1)
    assert 0.5 < row["auroc"] <= 1 and row["jaccard_deseq2"] <= 1


def test_real_data_rows_have_agreement_but_no_truth_columns():
    deseq2, generative, _ = tables()
    table = de_statistics_table(deseq2, {"nbvae": generative}, None, CONTRAST)
    assert "observed_fdr" not in table and "auroc" not in table
    assert table.loc[table["method"] == "nbvae", "pearson_lfc_deseq2"].eq(1.0).all()
    assert table.loc[table["method"] == "deseq2", "jaccard_deseq2"].eq(1.0).all()


def test_missing_columns_and_genes_are_input_errors():
    deseq2, generative, truth = tables()
    with pytest.raises(InputError, match=r"generative table nbvae.*prob_de"):
        de_statistics_table(deseq2, {"nbvae": generative.drop(columns="prob_de")}, truth, CONTRAST)
    with pytest.raises(InputError, match="truth table.*g9"):
        de_statistics_table(deseq2, {"nbvae": generative}, truth.iloc[:9], CONTRAST)


def test_dispersion_truth_table():
    truth = pd.DataFrame({"gene_id": GENES, "base_mean": [5.0] * 2 + [100.0] * 8, "dispersion": np.geomspace(0.01, 1, 10)})
    exact = pd.Series(truth["dispersion"].to_numpy(), index=GENES)
    doubled = exact * 2
    table = dispersion_truth_table({"exact": exact, "doubled": doubled}, truth).set_index(["estimate", "genes"])
    assert table.loc[("exact", "all"), "pearson_log"] == pytest.approx(1.0)
    assert table.loc[("exact", "all"), "median_abs_log2_ratio"] == pytest.approx(0.0)
    assert table.loc[("doubled", "all"), "median_log2_ratio"] == pytest.approx(1.0)
    assert table.loc[("doubled", "base_mean>=10"), "n_genes"] == 8
