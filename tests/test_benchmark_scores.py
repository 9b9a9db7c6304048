"""Benchmark scores with truth and seeds: seed summaries, run notes (capped scVI, Harmony's stop), scVI
modes, biology kept (pseudobulk AUPRC), values from an embedding, the Wilcoxon explanation baseline and
their figures."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from deepexpr.errors import InputError
from deepexpr.evaluate.benchmark import biology_kept, pseudobulk_gene_scores, values_from_embedding, wilcoxon_gene_scores
from deepexpr.evaluate.integration import method_group, run_note, seed_summary
from deepexpr.integration.baselines import SCVI_MODE_DEFAULTS, scvi_settings
from deepexpr.io import write_table
from deepexpr.plots import benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


def _scib_like() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": ["combat", "genex_corrected_seed0", "genex_corrected_seed1", "scvi_recommended_seed0", "scvi_recommended_seed1", "truth"],
            "method": ["combat", "genex", "genex", "scvi", "scvi", "truth"],
            "mode": ["none", "corrected", "corrected", "recommended", "recommended", "none"],
            "seed": [0, 0, 1, 0, 1, 0],
            "note": ["", "", "", "capped: 30 of scvi-tools' 400 epochs", "capped: 30 of scvi-tools' 400 epochs", ""],
            "bio_conservation": [0.7, 0.8, 0.6, 0.75, 0.77, 0.9],
            "batch_correction": [0.5, 0.6, 0.4, 0.55, 0.57, 0.7],
            "total": [0.62, 0.72, 0.52, 0.67, 0.69, 0.82],
        }
    )


def test_seed_summary_gives_mean_and_sd_per_method_and_mode():
    summary = seed_summary(_scib_like(), ["total"]).set_index("group")
    assert list(summary.index) == ["combat", "genex_corrected", "scvi_recommended", "truth"]
    assert summary.loc["genex_corrected", "total_mean"] == pytest.approx(0.62)
    assert summary.loc["genex_corrected", "total_sd"] == pytest.approx(np.std([0.72, 0.52], ddof=1))
    assert summary.loc["genex_corrected", "n_seeds"] == 2 and np.isnan(summary.loc["combat", "total_sd"])
    assert summary.loc["scvi_recommended", "note"].startswith("capped")
    assert method_group("scvi", "genexpaper") == "scvi_genexpaper" and method_group("harmony", "none") == "harmony"
    with pytest.raises(InputError, match="nmi"):
        seed_summary(_scib_like(), ["nmi"])


def test_run_notes_label_capped_scvi_and_harmony_stops():
    def run(params):
        adata = ad.AnnData(np.zeros((2, 2), dtype=np.float32))
        adata.uns["integration"] = {"method": "x", "params": params}
        return adata

    assert run_note(run({"epochs_capped": True, "max_epochs": 30, "epoch_rule": 400})) == "capped: 30 of scvi-tools' 400 epochs"
    assert run_note(run({"epochs_capped": False, "max_epochs": 400, "epoch_rule": 400})) == ""
    assert run_note(run({"iterations": 3, "stop_reason": "converged"})) == "3 iterations, converged"


def test_scvi_modes_fill_only_what_the_config_leaves_open():
    block = {"modes": ["recommended", "genexpaper"], "seeds": [0, 1], "n_latent": 10, "batch_size": None, "max_epochs": 30}
    assert scvi_settings(block, "recommended") == {"n_latent": 10, "batch_size": 128, "max_epochs": 30}
    assert scvi_settings(block, "genexpaper")["batch_size"] == 1200
    assert scvi_settings({**block, "batch_size": 256}, "genexpaper")["batch_size"] == 256
    assert set(SCVI_MODE_DEFAULTS) == {"recommended", "genexpaper"}
    with pytest.raises(InputError, match="scvi.modes"):
        scvi_settings(block, "fast")


def test_biology_kept_scores_the_condition_genes_of_a_pseudobulk_table():
    genes = [f"g{i}" for i in range(6)]
    affected = pd.Series([True, True, False, False, False, False], index=genes)
    table = pd.DataFrame(
        {
            "cell_type": ["a"] * 5 + ["b"] * 5,
            "gene": genes[:5] * 2,  # g5 untested: scores 0
            "pvalue": [1e-6, 1e-4, 0.5, 0.9, np.nan, 1e-5, 1e-3, 0.2, 0.8, 0.6],
        }
    )
    scores = pseudobulk_gene_scores(table)
    assert scores["g0"] == pytest.approx((6 + 5) / 2) and scores["g4"] == pytest.approx(-np.log10(0.6) / 2)
    kept = biology_kept(table, affected, genes)
    assert kept["biology_kept_auprc"] == pytest.approx(1.0) and kept["chance_auprc"] == pytest.approx(2 / 6)
    assert kept["n_cell_types"] == 2 and kept["n_affected"] == 2
    # a run that erased the condition ranks the affected genes last
    erased = table.assign(pvalue=table["pvalue"].fillna(0.5)[::-1].to_numpy())
    assert biology_kept(erased, affected, genes)["biology_kept_auprc"] < 0.6
    with pytest.raises(InputError, match="condition_affected"):
        biology_kept(table, affected.iloc[:3], genes)


def test_values_from_an_embedding_average_each_cells_neighbourhood():
    embedding = np.array([[0.0], [0.1], [10.0], [10.1]])
    values = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.0, 7.0]])
    smoothed = values_from_embedding(embedding, values, n_neighbors=2)
    np.testing.assert_allclose(smoothed, [[2, 0], [2, 0], [0, 6], [0, 6]])


def test_wilcoxon_baseline_finds_the_genes_that_differ_between_levels():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 30)).astype(np.float32)
    levels = np.repeat(["b1", "b2"], 100)
    values[levels == "b2", :5] += 2.0
    scores = wilcoxon_gene_scores(values, levels, [f"g{i}" for i in range(30)])
    assert list(scores.index[:2]) == ["g0", "g1"] and set(scores.nlargest(5).index) == {f"g{i}" for i in range(5)}
    with pytest.raises(InputError, match="2"):
        wilcoxon_gene_scores(values, np.repeat("b1", 200), [f"g{i}" for i in range(30)])


def test_benchmark_figures_show_every_seed(tmp_path):
    scib = tmp_path / "scib.tsv"
    write_table(_scib_like(), scib)
    numbers = benchmark.plot_scib_seeds(scib, tmp_path / "seeds.png").numbers
    assert numbers["n_seeds"] == {"combat": 1, "genex_corrected": 2, "scvi_recommended": 2}
    assert numbers["mean"]["genex_corrected"] == pytest.approx(0.62) and np.isnan(numbers["sd"]["combat"])
    kept = _scib_like().iloc[:5].assign(biology_kept_auprc=[0.3, 0.5, 0.4, 0.2, 0.25], chance_auprc=0.05)
    write_table(kept, tmp_path / "kept.tsv")
    numbers = benchmark.plot_biology_kept(tmp_path / "kept.tsv", tmp_path / "kept.png").numbers
    assert numbers["auprc_mean"]["genex_corrected"] == pytest.approx(0.45)
    auroc = pd.DataFrame({"covariate": ["batch", "batch"], "method": ["integrated_gradients", "wilcoxon"], "auroc": [0.7, 0.9]})
    write_table(auroc, tmp_path / "auroc.tsv")
    numbers = benchmark.plot_explain_auroc(tmp_path / "auroc.tsv", tmp_path / "auroc.png").numbers
    assert numbers == {"integrated_gradients": {"batch": 0.7}, "wilcoxon": {"batch": 0.9}}
    for name in ("seeds", "kept", "auroc"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_report_captions_match_the_module(repo_root):
    """The report's one caption for the three figures (branches on the figure wildcard) says what the
    figures' own captions say."""
    rst = " ".join((repo_root / "resources" / "report" / "benchmark_figure.rst").read_text().split())
    branches = re.findall(r"%\} (.*?) \{%", rst)
    assert branches == [benchmark.CAPTIONS[name] for name in ("scib_seeds", "biology_kept", "explain_auroc")]
