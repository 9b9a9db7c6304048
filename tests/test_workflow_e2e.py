"""End-to-end runs of the workflow on tiny configs in temporary working directories."""

from __future__ import annotations

import filecmp
import gzip
import http.server
import json
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

pytestmark = pytest.mark.workflow


def tiny_config(**overrides) -> dict:
    """The embedded default, shrunk so a run takes well under a minute on 2 cores."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sim = config["datasets"]["sim_bulk"]
    sim["simulate"]["n_genes"] = 400
    sim["simulate"]["preset"] = "easy"  # the AUROC floors below were measured on the easy preset
    sim["nbvae"].update({"seeds": [0, 1], "max_epochs": 300, "n_posterior_samples": 50})
    sim["enrich"]["permutations"] = 20
    for name in ("sim_pbmc", "sim_covid"):
        single = config["datasets"][name]
        single["simulate"]["n_genes"] = 300
        single["normalize"].update({"n_top_genes": 200, "min_genes": 20})
        single["genex"].update({"max_epochs": 3, "seeds": [0]})
        single["scvi"].update({"max_epochs": 5, "seeds": [0]})
        single["explain"]["max_cells"] = 100
    config["datasets"]["sim_pbmc"]["simulate"]["batch_cells"] = [120, 120, 160]
    # The siVAE study and its planted modules have their own e2e test (tests/test_workflow_sivae.py).
    del config["datasets"]["sim_pbmc"]["sivae"]
    del config["datasets"]["sim_pbmc"]["simulate"]["modules"]
    # the tiny sim_pbmc checks below were measured on the easy preset (ComBat's own model); sim_covid stays realistic
    config["datasets"]["sim_pbmc"]["simulate"]["preset"] = "easy"
    config["datasets"]["sim_covid"]["simulate"]["cells_per_donor"] = 60
    # scIMTA's own e2e test (tests/test_workflow_scimta.py) runs its study on a tiny block.
    config["datasets"]["sim_pbmc"].pop("scimta", None)
    config["run"] = ["sim_bulk", "sim_pbmc"]
    for key, value in overrides.items():
        config[key] = value
    return config


def run_workflow(workdir: Path, config: dict, *targets: str, extra=()) -> subprocess.CompletedProcess:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--cores", "2", *targets, *extra],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


def outputs(workdir: Path) -> list[Path]:
    return sorted(
        p.relative_to(workdir)
        for p in (workdir / "results").rglob("*")
        if p.is_file() and p.suffix in {".tsv", ".json", ".gmt", ".gz"}
    )


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory):
    """The tiny default run, then its numeric outputs again in a second directory (determinism).

    The second run asks only for the tables the first one wrote, so it skips figures and report.
    """
    first = tmp_path_factory.mktemp("first")
    result = run_workflow(first, tiny_config())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    second = tmp_path_factory.mktemp("second")
    result = run_workflow(second, tiny_config(), *(str(path) for path in outputs(first)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return [first, second]


def test_default_run_writes_tables_and_figures(sim_runs):
    workdir = sim_runs[0]
    base = workdir / "results" / "sim_bulk"
    summary = json.loads((base / "de" / "luminal_vs_basal" / "corrected" / "summary.json").read_text())
    for key in ["contrast", "n_genes", "n_deseq2_padj05", "n_deseq2_na", "pearson_lfc", "spearman_lfc", "naive_pearson_lfc"]:
        assert key in summary, f"summary.json lacks {key}"
    assert summary["n_genes"] > 100
    assert set(summary["truth"]) >= {"deseq2", "generative"}
    for method in ("deseq2", "generative"):
        assert set(summary["truth"][method]) >= {"auroc", "auprc", "observed_fdr", "n_called"}
    # The science: both methods rank the simulated DE genes far above chance, in the plain and in
    # the cell-type-adjusted contrast. Tiny run measured 0.998/0.999 (luminal vs basal) and
    # 0.984/0.987 (lactate vs virgin; DESeq2/generative); 0.95 leaves margin, a ranking that had
    # lost the effects (shuffled LFCs, wrong contrast direction or samples) gives ~0.5.
    for contrast in ("luminal_vs_basal", "lactate_vs_virgin"):
        truth = json.loads((base / "de" / contrast / "corrected" / "summary.json").read_text())["truth"]
        for method in ("deseq2", "generative"):
            assert truth[method]["auroc"] > 0.95, (contrast, method, truth[method])
            assert truth[method]["n_called"] > 0
    # Generative and DESeq2 LFCs agree gene by gene (measured Pearson 0.94).
    assert summary["pearson_lfc"] > 0.8
    figures = list((base / "figures").rglob("*.png"))
    assert len(figures) > 20
    assert (base / "figures" / "luminal_vs_basal" / "corrected_roc.png").stat().st_size > 1000
    adata = ad.read_h5ad(base / "data" / "prepared.h5ad")
    assert "counts" in adata.layers and {"cell_type", "status"} <= set(adata.obs)
    assert {"package_version", "config_hash", "seed"} <= set(adata.uns["deepexpr"])
    assert list((workdir / "benchmarks" / "sim_bulk" / "train_nbvae").glob("*.tsv"))


def test_default_run_corrects_batches_side_by_side(sim_runs):
    base = sim_runs[0] / "results" / "sim_pbmc"
    scib = pd.read_csv(base / "integration" / "scib.tsv", sep="\t")
    runs = {"unintegrated", "combat", "harmony", "scanorama", "scvi_recommended_seed0", "genex_corrected_seed0"}
    assert set(scib["run"]) == runs | {"truth"}
    # capped scVI is labelled, Harmony says how it stopped; one summary row per method and mode
    notes = scib.set_index("run")["note"].fillna("")
    assert notes["scvi_recommended_seed0"].startswith("capped: 5 of") and "iterations" in notes["harmony"]
    assert len(pd.read_csv(base / "integration" / "scib_seeds.tsv", sep="\t")) == len(runs) + 1
    assert scib[["bio_conservation", "batch_correction", "total"]].notna().all().all()
    # The batch-free truth keeps the cell types apart and has no batch left in it.
    reference = scib.set_index("run").loc["truth"]
    unintegrated = scib.set_index("run").loc["unintegrated"]
    assert reference["batch_correction"] > unintegrated["batch_correction"]
    assert reference["bio_conservation"] > 0.5
    # GENEX corrects: this tiny run trains it for 3 epochs only, so its gains are small but they are
    # reproducible to the last digit (test_cpu_rerun_gives_identical_numbers). Measured: scIB batch
    # correction 0.302 against unintegrated 0.278; thresholds at about half those margins. A GENEX
    # that returned its input (the identity it starts as) scores exactly the unintegrated values.
    genex = scib.set_index("run").loc["genex_corrected_seed0"]
    assert genex["batch_correction"] > unintegrated["batch_correction"] + 0.01
    # ComBat, on this linear simulated batch effect, removes it (measured 0.93 against 0.28).
    assert scib.set_index("run").loc["combat", "batch_correction"] > unintegrated["batch_correction"] + 0.3
    truth = pd.read_csv(base / "integration" / "truth.tsv", sep="\t")
    assert set(truth["run"]) == {"unintegrated", "combat", "scvi_recommended_seed0", "genex_corrected_seed0"}
    # Per-gene Pearson with the batch-free truth on the batch-affected genes: GENEX 0.729 against
    # unintegrated 0.716 (ComBat 0.968); GENEX must be above unintegrated and keep the others'.
    truth = truth.set_index("run")
    assert (
        truth.loc["genex_corrected_seed0", "pearson_median_batch_genes"]
        > truth.loc["unintegrated", "pearson_median_batch_genes"] + 0.005
    )
    assert truth.loc["genex_corrected_seed0", "pearson_median"] > 0.95  # measured 0.996
    assert truth.loc["combat", "pearson_median_batch_genes"] > truth.loc["unintegrated", "pearson_median_batch_genes"] + 0.1
    ranked = pd.read_csv(base / "explain" / "batch.tsv", sep="\t")
    assert {"covariate", "level", "cell_type", "gene", "attribution", "rank"} <= set(ranked.columns)
    summary = json.loads((base / "explain" / "batch_summary.json").read_text())
    # The batch-affected genes rank above chance in the critic's batch attributions. Measured 0.64
    # after 3 GENEX epochs (the tiny run); the critic's heads learn slowly (see test_explain), so
    # 0.6 is what this run supports: about 2 sd above a random ranking's 0.5 on these genes.
    assert summary["batch"]["auroc_vs_truth"] > 0.6
    assert summary["batch"]["median_relative_delta"] < 0.05
    corrected = ad.read_h5ad(base / "integration" / "genex_corrected_seed0.h5ad")
    assert (corrected.layers["corrected"] >= 0).all(), "GENEX output must be non-negative"
    for figure in ["scib_table", "umap_batch", "umap_cell_type", "value_histograms", "truth_scatter", "explain_batch_heatmap"]:
        assert (base / "figures" / f"{figure}.png").stat().st_size > 1000, figure
    assert (sim_runs[0] / "benchmarks" / "sim_pbmc" / "train_genex" / "corrected_seed0.tsv").exists()


def test_covid_like_dataset_by_name(tmp_path):
    """`snakemake sim_covid`: donors as batches, explanation of condition and sex, pseudobulk DE."""
    result = run_workflow(tmp_path, tiny_config(), "sim_covid")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    base = tmp_path / "results" / "sim_covid"
    for covariate in ("batch", "condition", "sex"):
        assert (base / "explain" / f"{covariate}.tsv").exists()
    pseudobulk = pd.read_csv(base / "de" / "pseudobulk_genex_corrected_seed0.tsv", sep="\t")
    assert {"cell_type", "gene", "log2FoldChange", "padj"} <= set(pseudobulk.columns)
    # biology kept: every run, embedding-only ones included, beside its scIB total
    kept = pd.read_csv(base / "integration" / "biology_kept.tsv", sep="\t")
    assert {"harmony", "scanorama", "genex_corrected_seed0"} <= set(kept["run"])
    assert kept[["biology_kept_auprc", "total"]].notna().all().all()
    auroc = pd.read_csv(base / "explain" / "baseline" / "auroc.tsv", sep="\t")
    assert set(auroc["method"]) == {"integrated_gradients", "wilcoxon"} and len(auroc) == 6
    assert not (tmp_path / "results" / "sim_bulk").exists(), "a target by name builds only that dataset"


def test_cpu_rerun_gives_identical_numbers(sim_runs):
    first, second = sim_runs
    files = outputs(first)
    assert files == outputs(second)
    different = [str(f) for f in files if not filecmp.cmp(first / f, second / f, shallow=False)]
    assert not different, f"outputs differ between two identical runs: {different}"


def test_report_builds(sim_runs):
    workdir = sim_runs[0]
    result = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--cores", "1", "--report", "report.html"],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (workdir / "report.html").stat().st_size > 10_000


def test_non_integer_counts_fail_cleanly_with_no_output(tmp_path, shared_data):
    """Real GSE60450 layout with one corrupted value: a clear error and no prepared file."""
    counts = tmp_path / "counts.txt"
    lines = gzip.open(shared_data / "gse60450" / "GSE60450_LactationGenewiseCounts.txt.gz", "rt").read().splitlines()
    fields = lines[5].split("\t")
    fields[3] = "12.5"
    lines[5] = "\t".join(fields)
    counts.write_text("\n".join(lines) + "\n")
    config = tiny_config(run=["gse60450"])
    config["datasets"]["gse60450"]["counts"] = {"source": str(counts)}
    del config["datasets"]["gse60450"]["gene_info"]
    result = run_workflow(tmp_path, config, "results/gse60450/data/prepared.h5ad")
    assert result.returncode != 0
    assert "non-integer" in (tmp_path / "logs" / "gse60450" / "prepare_bulk.log").read_text()
    assert not (tmp_path / "results" / "gse60450" / "data").exists() or not any(
        (tmp_path / "results" / "gse60450" / "data").iterdir()
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def loopback_server(tmp_path):
    """Serve a directory on 127.0.0.1 for the download rule."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_rule_fetches_real_gse60450_over_http(tmp_path, loopback_server, shared_data):
    served, url = loopback_server
    shutil.copy(shared_data / "gse60450" / "GSE60450_LactationGenewiseCounts.txt.gz", served / "counts.txt.gz")
    shutil.copy(shared_data / "annotation" / "Mus_musculus.gene_info.2021-07.gz", served / "gene_info.gz")
    workdir = tmp_path / "work"
    config = tiny_config(run=["gse60450"])
    dataset = config["datasets"]["gse60450"]
    dataset["counts"] = {"source": f"{url}/counts.txt.gz"}
    dataset["gene_info"] = {"source": f"{url}/gene_info.gz"}
    result = run_workflow(workdir, config, "results/gse60450/data/prepared.h5ad")
    assert result.returncode == 0, result.stderr[-4000:]
    adata = ad.read_h5ad(workdir / "results" / "gse60450" / "data" / "prepared.h5ad")
    assert adata.n_vars == 18418
    record = (workdir / "resources" / "downloads" / "gse60450" / "counts.gz.sha256").read_text().split()
    assert record[0] == "9ec4ca48adaa0377402a9d3f7d015e412d9a3a446a6fdd17c5a386d97406ea51"

    # A pinned checksum that does not match: the run stops and leaves no download behind.
    fresh = tmp_path / "fresh"
    dataset["counts"]["sha256"] = "0" * 64
    result = run_workflow(fresh, config, "results/gse60450/data/prepared.h5ad")
    assert result.returncode != 0
    assert "sha256 mismatch" in (fresh / "logs" / "gse60450" / "download" / "counts.gz.log").read_text()
    assert not (fresh / "resources" / "downloads" / "gse60450" / "counts.gz").exists()
