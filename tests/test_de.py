"""pyDESeq2 wrapper (deseq2.tsv contract) and DE comparison metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepexpr.data.bulk.read import (
    build_bulk_adata,
    match_samples,
    median_of_ratios_size_factors,
)
from deepexpr.data.bulk.simulate import simulate_bulk
from deepexpr.de.bulk import DESEQ2_COLUMNS, run_deseq2
from deepexpr.errors import InputError
from deepexpr.metrics.de import (
    auprc,
    auroc,
    jaccard,
    lfc_agreement,
    n_called,
    observed_fdr,
    top_k_genes,
    top_k_overlap,
    true_lfc_for_contrast,
    truth_metrics,
)

LUMINAL_VS_BASAL = {
    "name": "luminal_vs_basal",
    "design": "~cell_type",
    "factor": "cell_type",
    "test": "luminal",
    "reference": "basal",
    "subset": {},
}
LACTATE_VS_VIRGIN = {
    "name": "lactate_vs_virgin",
    "design": "~cell_type + status",
    "factor": "status",
    "test": "lactate",
    "reference": "virgin",
    "subset": {},
}
OUTLIER_GENE = "g0001"


@pytest.fixture(scope="module")
def simulated():
    """A small simulated data set with one planted single-sample outlier."""
    simulation = simulate_bulk(n_genes=400, seed=11, preset="easy")
    counts = simulation.counts.drop(columns="Length")
    counts.loc[OUTLIER_GENE] = [200] * 11 + [40000]
    matched = match_samples(counts, simulation.samples, "counts", "samples")
    adata = build_bulk_adata(matched, simulation.samples, ["cell_type", "status"], dataset="sim")
    return adata, simulation.truth


@pytest.fixture(scope="module")
def luminal_result(simulated):
    return run_deseq2(simulated[0], LUMINAL_VS_BASAL)


def test_table_layout(simulated, luminal_result):
    adata, _ = simulated
    assert list(luminal_result.columns) == DESEQ2_COLUMNS
    assert list(luminal_result["gene_id"]) == list(adata.var_names)
    assert list(luminal_result["symbol"]) == list(adata.var["symbol"])
    assert luminal_result["cooks_outlier"].dtype == bool


def test_lfcs_recover_the_truth(simulated, luminal_result):
    _, truth = simulated
    true_lfc = true_lfc_for_contrast(truth, LUMINAL_VS_BASAL).loc[luminal_result["gene_id"]].to_numpy()
    expressed = luminal_result["base_mean"].to_numpy() > 20
    for column in ("log2fc", "log2fc_shrunk", "naive_log2fc"):
        assert np.corrcoef(luminal_result[column][expressed], true_lfc[expressed])[0, 1] > 0.9, column
    significance = -np.log10(luminal_result["pvalue"])
    assert auroc(significance, true_lfc != 0) > 0.9
    shrunk, unshrunk = luminal_result["log2fc_shrunk"].abs(), luminal_result["log2fc"].abs()
    assert (shrunk <= unshrunk + 1e-6)[~(true_lfc != 0)].mean() > 0.9


def test_cooks_outlier_is_flagged_and_tested_without_filter(luminal_result):
    row = luminal_result.set_index("gene_id").loc[OUTLIER_GENE]
    assert row["cooks_outlier"] and np.isnan(row["pvalue"]) and np.isnan(row["padj"])
    assert np.isfinite(row["padj_no_cooks_filter"]) and np.isfinite(row["stat"])
    assert luminal_result["cooks_outlier"].sum() >= 1


def test_additive_design_shrinks_the_contrast_coefficient(simulated):
    adata, truth = simulated
    result = run_deseq2(adata, LACTATE_VS_VIRGIN)
    expressed = result["base_mean"].to_numpy() > 20
    lactate = true_lfc_for_contrast(truth, LACTATE_VS_VIRGIN).loc[result["gene_id"]].to_numpy()
    pregnant = truth.set_index("gene_id").loc[result["gene_id"], "lfc__status__pregnant"].to_numpy()
    shrunk = result["log2fc_shrunk"].to_numpy()
    # virgin is not the first sorted level: the wrapper must still shrink lactate vs virgin
    assert np.corrcoef(shrunk[expressed], lactate[expressed])[0, 1] > 0.85
    assert np.corrcoef(shrunk[expressed], pregnant[expressed])[0, 1] < 0.3


def test_reversed_contrast_flips_sign_and_no_shrink(simulated, luminal_result):
    reversed_contrast = {**LUMINAL_VS_BASAL, "test": "basal", "reference": "luminal"}
    result = run_deseq2(simulated[0], reversed_contrast, shrink=False)
    np.testing.assert_allclose(result["log2fc"], -luminal_result["log2fc"], atol=1e-3)
    np.testing.assert_allclose(result["naive_log2fc"], -luminal_result["naive_log2fc"])
    np.testing.assert_allclose(result["padj"], luminal_result["padj"], rtol=1e-3)
    assert result["log2fc_shrunk"].isna().all()


def test_subset_contrast_uses_only_the_subset(simulated, capsys):
    adata, _ = simulated
    within = {
        "name": "lactate_vs_virgin_luminal",
        "design": "~status",
        "factor": "status",
        "test": "lactate",
        "reference": "virgin",
        "subset": {"cell_type": "luminal"},
    }
    result = run_deseq2(adata, within, shrink=False)
    assert capsys.readouterr() == ("", "")  # pyDESeq2's progress prints are silenced

    luminal = adata[adata.obs["cell_type"] == "luminal"]
    counts = luminal.layers["counts"]
    normalised = counts / median_of_ratios_size_factors(counts)[:, None]
    status = luminal.obs["status"].to_numpy()
    expected = np.log2(
        (normalised[status == "lactate"].mean(axis=0) + 0.5) / (normalised[status == "virgin"].mean(axis=0) + 0.5)
    )
    np.testing.assert_allclose(result["naive_log2fc"], expected)
    np.testing.assert_allclose(result["base_mean"], normalised.mean(axis=0))


def test_invalid_contrast_is_an_input_error(simulated):
    with pytest.raises(InputError, match="'lactation'"):
        run_deseq2(simulated[0], {**LACTATE_VS_VIRGIN, "test": "lactation"})


# --- metrics ---------------------------------------------------------------------------------------------------


def test_lfc_agreement_uses_finite_aligned_pairs():
    a = pd.Series([1.0, 2.0, 3.0, np.nan, 10.0], index=list("abcde"))
    b = pd.Series([10.0, 2.0, 4.0, 6.0, 1.0], index=list("ebcda"))  # aligned: a=1,b=2,c=3 vs 1,2,4
    result = lfc_agreement(a, b)
    assert result["n"] == 4 and result["spearman"] == pytest.approx(1.0)
    assert result["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 10], [1, 2, 4, 10])[0, 1])
    assert np.isnan(lfc_agreement([1.0, np.nan], [1.0, 2.0])["pearson"])


def test_classification_metrics_by_hand():
    scores = np.array([0.9, 0.8, np.nan, 0.1])
    is_de = np.array([True, False, True, False])
    # ranking: 0.9 (DE), 0.8, 0.1, NaN-last (DE) -> DE ranks 1 and 4 of 4: AUROC = 2/4 pairs won
    assert auroc(scores, is_de) == pytest.approx(0.5)
    assert auprc(scores, is_de) == pytest.approx((1 / 1 + 2 / 4) / 2)
    called = np.array([True, True, False, False])
    assert observed_fdr(called, is_de) == pytest.approx(0.5)
    assert n_called(called) == 2
    assert np.isnan(observed_fdr(np.zeros(4, bool), is_de)) and np.isnan(auroc(scores, np.ones(4, bool)))
    assert truth_metrics(scores, called, is_de) == {"auroc": 0.5, "auprc": 0.75, "observed_fdr": 0.5, "n_called": 2}


def test_true_lfc_for_contrast():
    truth = pd.DataFrame(
        {"gene_id": ["g1", "g2"], "lfc__status__pregnant": [1.0, 0.0], "lfc__status__lactate": [3.0, -2.0]}
    )
    spec = {"factor": "status", "test": "lactate", "reference": "virgin"}
    assert true_lfc_for_contrast(truth, spec).to_dict() == {"g1": 3.0, "g2": -2.0}
    assert true_lfc_for_contrast(truth, {**spec, "reference": "pregnant"}).to_dict() == {"g1": 2.0, "g2": -2.0}
    assert true_lfc_for_contrast(truth, {**spec, "test": "virgin", "reference": "lactate"}).to_dict() == {
        "g1": -3.0,
        "g2": 2.0,
    }
    with pytest.raises(InputError, match="only one of them"):
        true_lfc_for_contrast(truth, {**spec, "test": "weaned"})
    with pytest.raises(InputError, match="factor 'cell_type'"):
        true_lfc_for_contrast(truth, {**spec, "factor": "cell_type"})


def test_top_k_helpers():
    estimate = pd.Series({"a": 3.0, "b": 2.0, "c": -1.0, "d": np.nan, "e": -4.0})
    reference = pd.Series({"a": 1.0, "b": -2.0, "c": 2.0, "d": 5.0, "e": -3.0})
    assert list(top_k_genes(estimate, 2)) == ["a", "b"]
    assert list(top_k_genes(estimate, 2, "down")) == ["e", "c"]
    assert jaccard(["a", "b"], ["b", "c"]) == pytest.approx(1 / 3)
    overlap = top_k_overlap(estimate, reference, k=2, reference_called=["a", "x"])
    # top-2 up: {a, b} vs {d, c} -> no overlap; 'a' is among the reference's called genes
    assert overlap == {"jaccard": 0.0, "n_shared": 0, "n_reference_called": 1}
    assert top_k_overlap(estimate, reference, k=2, direction="down") == {"jaccard": pytest.approx(1 / 3), "n_shared": 1}
    with pytest.raises(ValueError, match="direction"):
        top_k_genes(estimate, 2, "sideways")


# --- real data ---------------------------------------------------------------------------------------------------

# R DESeq2 on GSE60450 (docs/models/nbvae.md, shipped result files): Cook's-outlier NA genes and padj < 0.05 count.
R_NA_GENES = {"215866", "18948", "19259", "382231", "212753"}
R_N_PADJ05 = 10651


@pytest.mark.shared_data
def test_gse60450_luminal_vs_basal_matches_r_deseq2(gse60450_adata):
    result = run_deseq2(gse60450_adata, LUMINAL_VS_BASAL, n_cpus=2, shrink=False)
    assert set(result.loc[result["padj"].isna(), "gene_id"]) == R_NA_GENES
    assert set(result.loc[result["cooks_outlier"], "gene_id"]) == R_NA_GENES
    assert abs((result["padj"] < 0.05).sum() - R_N_PADJ05) / R_N_PADJ05 < 0.02
