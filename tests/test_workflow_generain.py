"""The GeneRAIN study through Snakemake: a tiny sim_archs4 run end to end, the offline TCGA-BRCA
ARCHS4 file and the tcga_archs4 plan, and the paper config's archs4 dry run."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from deepexpr.data.archs4 import BinnedDataset, open_archs4, prepare_binned
from deepexpr.data.archs4.tables import archs4_from_tables
from deepexpr.errors import InputError
from deepexpr.genes import read_embedding, read_word2vec
from test_workflow_e2e import REPO, run_workflow

pytestmark = [pytest.mark.workflow, pytest.mark.usefixtures("one_thread")]


def tiny_archs4_config() -> dict:
    """The embedded default with only sim_archs4, shrunk: fewer samples, genes and steps."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sim = config["datasets"]["sim_archs4"]
    sim["simulate"].update({"n_samples": 100, "n_genes": 120, "n_modules": 3, "module_size": 20})
    sim["generain"]["qc"]["min_nonzero_genes"] = 40
    sim["generain"]["model"].update({"max_steps": 30, "eval_every": 10, "seq_len": 64})
    for variant in ("bert_genes", "bert_expression"):
        sim["generain"]["variants"][variant]["max_steps"] = 30
    sim["generain"]["checkpoint_every"] = 30
    config["run"] = ["sim_archs4"]
    return config


def test_sim_archs4_by_name(tmp_path):
    result = run_workflow(tmp_path, tiny_archs4_config(), "sim_archs4")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    base = tmp_path / "results" / "sim_archs4"
    study = base / "generain" / "corrected"
    summary = pd.read_csv(study / "attribute_summary.tsv", sep="\t")
    methods = {f"{v}_seed0" for v in ("gpt", "bert_genes", "bert_expression")} | {"random", "svd", "coexpression"}
    assert set(summary["method"]) == methods
    auc = summary[summary["metric"] == "roc_auc"].set_index("method")["mean"]
    # Three strong planted modules: the linear baselines separate them (1.0 in the tiny run), the
    # random embedding does not; GPT at 30 steps already sits above random.
    assert auc["svd"] > 0.9 and auc["coexpression"] > 0.9 and auc["random"] < 0.75
    assert auc["gpt_seed0"] > auc["random"]
    comparisons = pd.read_csv(study / "attribute_comparisons.tsv", sep="\t")
    assert {"wins", "losses", "wilcoxon_p"} <= set(comparisons.columns) and len(comparisons) == 3 * 3 * 2
    # Binning: the training path and the new-sample path give identical bins (corrected R1).
    agreement = pd.read_csv(study / "binning_agreement.tsv", sep="\t")["agreement"]
    assert (agreement == 1.0).all()
    binned = study / "binned"
    assert (binned / "boundaries.npz").is_file() and (binned / "qc.tsv").is_file()
    model_dir = base / "models" / "generain" / "corrected" / "gpt_seed0"
    tsv, w2v = read_embedding(model_dir / "embedding.tsv"), read_word2vec(model_dir / "GeneRAIN-vec.txt.gz")
    assert list(tsv.index) == list(w2v.index) and np.allclose(tsv.to_numpy(), w2v.to_numpy(), atol=1e-4)
    assert (model_dir / "checkpoints").is_dir()
    for figure in ("loss", "binning", "auc", "umap"):
        assert (study / "figures" / f"{figure}.png").stat().st_size > 1000
    neighbours = pd.read_csv(study / "nearest_neighbours.tsv", sep="\t")
    assert set(neighbours["method"]) == methods and (neighbours["rank"] <= 10).all()
    assert list((tmp_path / "benchmarks" / "sim_archs4" / "train_generain").glob("*.tsv"))


def test_tcga_tables_become_an_archs4_file(tmp_path, shared_data):
    source = shared_data / "tcga_brca_bulk_pathanalyser"
    samples = archs4_from_tables(
        {"TCGA_BRCA_ER": source / "ER_TCGA_RNAseq_counts.tsv.gz", "TCGA_BRCA_HER2": source / "HER2_TCGA_RNAseq_counts.tsv.gz"},
        tmp_path / "tcga.h5",
        labels=source / "Sample_labels.txt",
    )
    archs4 = open_archs4(tmp_path / "tcga.h5")
    assert archs4.n_samples == 115 and len(samples) == 115  # 5 samples are in both tables
    assert samples["series_id"].value_counts().to_dict() == {"TCGA_BRCA_ER": 60, "TCGA_BRCA_HER2": 55}
    with h5py.File(tmp_path / "tcga.h5", "r") as handle:
        er = {v.decode() for v in handle["meta/samples/er"][:]}
        assert handle["data/expression"].shape == (20124, 115)
    assert {"Positive", "Negative"} <= er
    binned = prepare_binned(tmp_path / "tcga.h5", tmp_path / "binned", split="sample", fractions=(0.8, 0.2, 0.0),
                            n_bins=100, boundary_fraction=1.0)  # fmt: skip
    assert len(BinnedDataset(binned, "train")) == 92 and len(BinnedDataset(binned, "validation")) == 23


def test_count_tables_with_other_genes_fail_cleanly(tmp_path):
    pd.DataFrame({"s1": [1, 2]}, index=pd.Index(["A", "B"], name="gene_symbol")).to_csv(tmp_path / "a.tsv", sep="\t")
    pd.DataFrame({"s2": [1, 2]}, index=pd.Index(["A", "C"], name="gene_symbol")).to_csv(tmp_path / "b.tsv", sep="\t")
    with pytest.raises(InputError, match="b.tsv"):
        archs4_from_tables({"one": tmp_path / "a.tsv", "two": tmp_path / "b.tsv"}, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_real_data_plans(shared_data, tmp_path):
    """`archs4` (paper config) and `tcga_archs4` (offline config) plan their whole study; one dry run
    with both config files (each dataset is defined in one of them) in an empty working directory,
    so results of earlier runs in the checkout cannot hide jobs."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    result = run_workflow(tmp_path, config, "archs4", "tcga_archs4", extra=[
        "-n", "--configfile", str(REPO / "config" / "paper.yaml"), str(REPO / "config" / "offline.yaml"),
        "--config", f"shared_data={shared_data}",
    ])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for job in ["download", "archs4_from_tables", "bin_archs4", "train_generain", "generain_attributes"]:
        assert f"rule {job}:" in result.stdout or f"localrule {job}:" in result.stdout, job
    for dataset in ("archs4", "tcga_archs4"):
        assert f"results/{dataset}/generain/corrected/attribute_summary.tsv" in result.stdout
    assert "results/archs4/generain/faithful/attribute_summary.tsv" in result.stdout  # both modes at paper scale
