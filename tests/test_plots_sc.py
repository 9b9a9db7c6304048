"""Single-cell figures (batch correction, GENEX explanation) drawn from contract-shaped result tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from deepexpr.errors import InputError
from deepexpr.io import write_json, write_table
from deepexpr.plots import explain, integration

RUNS = ["genex_corrected_seed1", "scvi_recommended_seed0", "unintegrated", "genex_corrected_seed0", "combat", "harmony", "scanorama"]
FULL_RUNS = ["unintegrated", "combat", "genex_corrected_seed0", "genex_corrected_seed1"]
BATCHES = ["batch1", "batch2", "batch3"]
CELL_TYPES = ["B", "CD14_Mono", "NK", "T_CD4"]
TITLE = {"dataset": "sim_pbmc", "mode": "corrected"}
SCIB_METRICS = [col for _, cols in integration.SCIB_GROUPS[:2] for col, _ in cols]  # Bio and Batch metrics


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.01  # something was drawn


def assert_names_file_and_column(excinfo, path, column):
    assert str(path) in str(excinfo.value) and column in str(excinfo.value)


@pytest.fixture(scope="module")
def integration_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "sim_pbmc" / "integration"
    rng = np.random.default_rng(0)
    n_cells = 300
    cell_type = rng.choice(CELL_TYPES, n_cells)
    batch = rng.choice(BATCHES, n_cells)
    centres = {ct: rng.normal(0, 6, 2) for ct in CELL_TYPES}
    umap_frames = []
    for run in RUNS:
        coords = np.array([centres[ct] for ct in cell_type]) + rng.normal(0, 1, (n_cells, 2))
        if run == "unintegrated":
            coords[:, 0] += 4 * (batch == "batch2")
        frame = pd.DataFrame(
            {
                "run": run,
                "cell": [f"cell{i}" for i in range(n_cells)],
                "umap1": coords[:, 0],
                "umap2": coords[:, 1],
                "batch": batch,
                "cell_type": cell_type,
            }
        )
        umap_frames.append(frame)
    umap_path = root / "umap.tsv.gz"
    write_table(pd.concat(umap_frames, ignore_index=True), umap_path)

    edges = np.linspace(-1.0, 6.0, 41)
    histogram, summary, truth, sample = [], [], [], []
    for k, run in enumerate(FULL_RUNS):
        values = np.concatenate([np.zeros(500 if run == "unintegrated" else 50), rng.gamma(2, 0.8, 4000)])
        if run != "unintegrated":
            values = values + rng.normal(0, 0.2, values.size)
        counts, _ = np.histogram(values, bins=edges)
        histogram.append(pd.DataFrame({"run": run, "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts}))
        summary.append(
            {
                "run": run,
                "pct_zero": 100 * np.mean(values == 0),
                "pct_negative": 100 * np.mean(values < 0),
                "min": values.min(),
                "max": values.max(),
                "mean": values.mean(),
            }
        )
        true_values = rng.gamma(2, 0.8, 2000)
        corrected = true_values + rng.normal(0, 0.3 + 0.2 * k, true_values.size)
        sample.append(pd.DataFrame({"run": run, "truth": true_values, "corrected": corrected}))
        truth.append(
            {
                "run": run,
                "method": "genex" if run.startswith("genex") else run,
                "mode": "corrected" if run.startswith("genex") else "none",
                "seed": 0,
                "pearson_median": 0.9 - 0.1 * k,
                "pearson_median_batch_genes": 0.8 - 0.1 * k,
                "mse": 0.2 + 0.1 * k,
                "w1": 0.05 + 0.02 * k,
                "de_precision": np.nan if run == "combat" else 0.5 + 0.1 * k,
                "de_recall": 0.3 + 0.1 * k,
                "de_f1": np.nan if run == "combat" else 0.4,
                "de_auprc": 0.6,
                "n_de_called": 0 if run == "combat" else 40 + k,
                "n_de_true": 120,
                "sample_pearson": np.corrcoef(true_values, corrected)[0, 1],
                "n_genes_constant": 0,
            }
        )
    scib_rows = []
    for k, run in enumerate(RUNS):
        row = {"run": run, "method": run.split("_")[0], "mode": "none", "seed": 0}
        row.update({metric: rng.uniform(0.2, 0.95) for metric in SCIB_METRICS})
        bio = np.mean([row[m] for m in ["isolated_labels", "nmi", "ari", "silhouette_label", "clisi"]])
        batch_cols = ["ilisi", "kbet", "graph_connectivity", "pcr_comparison"]
        row["kbet"] = np.nan if run == "harmony" else row["kbet"]
        batch_score = np.nanmean([row["silhouette_batch"]] + [row[m] for m in batch_cols])
        batch_bras = np.nanmean([row["bras"]] + [row[m] for m in batch_cols])
        row.update(
            bio_conservation=bio,
            batch_correction=batch_score,
            total=0.6 * bio + 0.4 * batch_score,
            batch_correction_bras=batch_bras,
            total_bras=0.6 * bio + 0.4 * batch_bras,
        )
        scib_rows.append(row)

    paths = {
        "umap": umap_path,
        "values": root / "values.tsv",
        "values_summary": root / "values_summary.tsv",
        "truth": root / "truth.tsv",
        "truth_sample": root / "truth_sample.tsv.gz",
        "scib": root / "scib.tsv",
    }
    write_table(pd.concat(histogram), paths["values"])
    write_table(pd.DataFrame(summary), paths["values_summary"])
    write_table(pd.DataFrame(truth), paths["truth"])
    write_table(pd.concat(sample), paths["truth_sample"])
    write_table(pd.DataFrame(scib_rows), paths["scib"])
    return paths


@pytest.fixture(scope="module")
def explain_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "sim_pbmc" / "explain"
    rng = np.random.default_rng(1)
    genes = [f"Gene{i}" for i in range(40)]
    rows = []
    for level in BATCHES:
        for cell_type in ["all"] + CELL_TYPES:
            attribution = rng.normal(0, 0.02, len(genes))
            attribution[BATCHES.index(level) * 3 : BATCHES.index(level) * 3 + 3] += 0.2  # a few strong genes per level
            strength = np.abs(attribution)
            rank = np.argsort(np.argsort(-strength)) + 1
            rows.append(
                pd.DataFrame(
                    {
                        "covariate": "batch",
                        "level": level,
                        "cell_type": cell_type,
                        "gene": genes,
                        "attribution": attribution,
                        "abs_attribution": strength + 0.01,
                        "rank": rank,
                        "n_cells": 300 if cell_type == "all" else 75,
                    }
                )
            )
    n_cells = 300
    target = rng.normal(2, 1, n_cells)
    baseline = rng.normal(0, 0.1, n_cells)
    relative = 10 ** rng.uniform(-4, -0.5, n_cells)
    relative[:3] = np.nan  # F(x) = F(baseline): no relative gap
    delta = relative * np.abs(target - baseline)
    cells = pd.DataFrame(
        {
            "cell": [f"cell{i}" for i in range(n_cells)],
            "level": rng.choice(BATCHES, n_cells),
            "target_logit": target,
            "baseline_logit": baseline,
            "attribution_sum": target - baseline - delta,
            "delta": delta,
            "relative_delta": relative,
            "flagged": np.nan_to_num(relative) > 0.05,
        }
    )
    paths = {
        "genes": root / "batch.tsv",
        "cells": root / "batch_cells.tsv.gz",
        "summary": root / "summary.json",
        "frames": {"genes": pd.concat(rows), "cells": cells},
    }
    write_table(paths["frames"]["genes"], paths["genes"])
    write_table(cells, paths["cells"])
    summary = {"baseline": "zeros", "n_steps": 64, "n_cells": n_cells, "median_relative_delta": 0.01}
    write_json(
        {"batch": {**summary, "n_flagged": int(cells["flagged"].sum()), "auroc_vs_truth": 0.875}}, paths["summary"]
    )
    return paths


def test_run_labels_and_order():
    assert integration.run_label("genex_corrected_seed0") == "GENEX (corrected, seed 0)"
    assert integration.run_label("genex_faithful_seed12") == "GENEX (faithful, seed 12)"
    assert [integration.run_label(r) for r in ["unintegrated", "combat", "harmony", "scanorama"]] == [
        "Unintegrated",
        "ComBat",
        "Harmony",
        "Scanorama",
    ]
    assert integration.run_label("scvi_genexpaper_seed1") == "scVI (genexpaper, seed 1)"
    assert integration.run_label("seurat") == "seurat"
    assert integration.run_label("truth") == "Batch-free truth (reference)"
    assert integration.run_order(["truth", "seurat", *RUNS])[-2:] == ["seurat", "truth"]
    assert integration.run_order(RUNS) == [
        "unintegrated",
        "combat",
        "harmony",
        "scanorama",
        "scvi_recommended_seed0",
        "genex_corrected_seed0",
        "genex_corrected_seed1",
    ]
    assert integration.run_colour("genex_corrected_seed0") == integration.run_colour("genex_corrected_seed1")
    assert sorted(["type_10", "type_2", "type_1"], key=integration.natural_key) == ["type_1", "type_2", "type_10"]


@pytest.mark.parametrize("color", ["batch", "cell_type"])
def test_umap_grid_has_one_panel_per_run_and_shared_levels(integration_tables, tmp_path, color):
    out = tmp_path / f"umap_{color}.png"
    result = integration.plot_umaps(integration_tables["umap"], color, out, **TITLE).numbers
    assert_png(out)
    assert result["runs"] == integration.run_order(RUNS)
    assert result["levels"] == (BATCHES if color == "batch" else CELL_TYPES)
    assert set(result["n_cells"].values()) == {300}


def test_umap_picks_runs_and_names_a_missing_run_or_column(integration_tables, tmp_path):
    path = integration_tables["umap"]
    result = integration.plot_umaps(path, "batch", tmp_path / "one.png", runs=["scvi_recommended_seed0"]).numbers
    assert result["runs"] == ["scvi_recommended_seed0"]
    with pytest.raises(InputError) as excinfo:
        integration.plot_umaps(path, "batch", tmp_path / "never.png", runs=["scvi_recommended_seed0", "bbknn"])
    assert str(path) in str(excinfo.value) and "bbknn" in str(excinfo.value)
    broken = tmp_path / "umap.tsv.gz"
    write_table(pd.read_csv(path, sep="\t").drop(columns="cell_type"), broken)
    with pytest.raises(InputError) as excinfo:
        integration.plot_umaps(broken, "cell_type", tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken, "cell_type")
    assert not (tmp_path / "never.png").exists()


def test_value_histograms(integration_tables, tmp_path):
    out = tmp_path / "values.png"
    result = integration.plot_value_histograms(
        integration_tables["values"], integration_tables["values_summary"], out, **TITLE
    ).numbers
    assert_png(out)
    summary = pd.read_csv(integration_tables["values_summary"], sep="\t").set_index("run")
    assert result["runs"] == integration.run_order(FULL_RUNS)
    assert result["pct_zero"]["unintegrated"] == pytest.approx(summary.loc["unintegrated", "pct_zero"])
    assert result["pct_negative"]["combat"] == pytest.approx(summary.loc["combat", "pct_negative"])

    broken = tmp_path / "values_summary.tsv"
    write_table(summary.reset_index().drop(columns="pct_negative"), broken)
    with pytest.raises(InputError) as excinfo:
        integration.plot_value_histograms(integration_tables["values"], broken, tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken, "pct_negative")


def test_truth_scatter_titles_use_the_sample_pearson_of_the_file(integration_tables, tmp_path):
    out = tmp_path / "scatter.png"
    result = integration.plot_truth_scatter(
        integration_tables["truth"], integration_tables["truth_sample"], out, **TITLE
    ).numbers
    assert_png(out)
    truth = pd.read_csv(integration_tables["truth"], sep="\t").set_index("run")
    assert result["sample_pearson"]["combat"] == pytest.approx(truth.loc["combat", "sample_pearson"])
    assert result["n_entries"] == {run: 2000 for run in FULL_RUNS}

    broken = tmp_path / "truth.tsv"
    write_table(truth.reset_index().drop(columns="sample_pearson"), broken)
    with pytest.raises(InputError) as excinfo:
        integration.plot_truth_scatter(broken, integration_tables["truth_sample"], tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken, "sample_pearson")


def test_truth_metric_and_de_recovery_bars(integration_tables, tmp_path):
    out = tmp_path / "truth_metrics.png"
    result = integration.plot_truth_metrics(integration_tables["truth"], out, **TITLE).numbers
    assert_png(out)
    truth = pd.read_csv(integration_tables["truth"], sep="\t").set_index("run")
    assert result["runs"] == integration.run_order(FULL_RUNS)
    assert result["w1"]["genex_corrected_seed1"] == pytest.approx(truth.loc["genex_corrected_seed1", "w1"])

    out = tmp_path / "de_recovery.png"
    result = integration.plot_de_recovery(integration_tables["truth"], out, **TITLE).numbers
    assert_png(out)
    assert result["n_de_true"] == [120]
    assert np.isnan(result["de_f1"]["combat"])  # nothing called: F1 undefined, drawn as n/a

    broken = tmp_path / "truth_no_f1.tsv"
    write_table(truth.reset_index().drop(columns="de_f1"), broken)
    with pytest.raises(InputError) as excinfo:
        integration.plot_de_recovery(broken, tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken, "de_f1")


def test_scib_table_sorted_by_total(integration_tables, tmp_path):
    out = tmp_path / "scib.png"
    result = integration.plot_scib_table(integration_tables["scib"], out, **TITLE).numbers
    assert_png(out)
    scib = pd.read_csv(integration_tables["scib"], sep="\t")
    assert result["runs"] == list(scib.sort_values("total", ascending=False)["run"])
    assert result["total_bras"]["scvi_recommended_seed0"] == pytest.approx(
        scib.set_index("run").loc["scvi_recommended_seed0", "total_bras"]
    )

    broken = tmp_path / "scib.tsv"
    write_table(scib.drop(columns="total_bras"), broken)
    with pytest.raises(InputError) as excinfo:
        integration.plot_scib_table(broken, tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken, "total_bras")


def test_explain_heatmap_shows_top_genes_and_auroc(explain_tables, tmp_path):
    out = tmp_path / "heatmap.png"
    result = explain.plot_explain_heatmap(
        explain_tables["genes"], out, top=5, summary_json=explain_tables["summary"], **TITLE
    ).numbers
    assert_png(out)
    assert result["covariate"] == "batch" and result["levels"] == BATCHES
    assert result["cell_types"] == ["all"] + CELL_TYPES
    assert result["auroc_vs_truth"] == pytest.approx(0.875)
    # The planted strong genes of each level are among its top 5 over all cells.
    assert {"Gene0", "Gene1", "Gene2", "Gene3", "Gene6"} <= set(result["genes"])
    assert len(result["genes"]) == len(set(result["genes"])) <= 15

    without = explain.plot_explain_heatmap(explain_tables["genes"], tmp_path / "plain.png", top=3).numbers
    assert without["auroc_vs_truth"] is None


def test_explain_dotplot(explain_tables, tmp_path):
    out = tmp_path / "dotplot.png"
    result = explain.plot_explain_dotplot(explain_tables["genes"], out, top=4, **TITLE).numbers
    assert_png(out)
    assert len(result["columns"]) == 4 * len(BATCHES)
    assert [gene for level, gene in result["columns"] if level == "batch2"][:3] == explain.top_genes(
        explain_tables["frames"]["genes"], "batch2", 3
    )


def test_explain_completeness_counts_the_flagged_column(explain_tables, tmp_path):
    out = tmp_path / "completeness.png"
    result = explain.plot_explain_completeness(explain_tables["cells"], out, covariate="batch", **TITLE).numbers
    assert_png(out)
    cells = explain_tables["frames"]["cells"]
    assert result["n_cells"] == 300 and result["n_undefined"] == 3
    assert result["n_flagged"] == int(cells["flagged"].sum()) == result["n_above_threshold"]
    assert result["median_relative_delta"] == pytest.approx(cells["relative_delta"].median())


def test_explain_missing_columns_name_file_and_column(explain_tables, tmp_path):
    broken = tmp_path / "batch.tsv"
    write_table(explain_tables["frames"]["genes"].drop(columns="abs_attribution"), broken)
    for plot in (explain.plot_explain_heatmap, explain.plot_explain_dotplot):
        with pytest.raises(InputError) as excinfo:
            plot(broken, tmp_path / "never.png")
        assert_names_file_and_column(excinfo, broken, "abs_attribution")
    broken_cells = tmp_path / "batch_cells.tsv.gz"
    write_table(explain_tables["frames"]["cells"].drop(columns="flagged"), broken_cells)
    with pytest.raises(InputError) as excinfo:
        explain.plot_explain_completeness(broken_cells, tmp_path / "never.png")
    assert_names_file_and_column(excinfo, broken_cells, "flagged")
    assert not (tmp_path / "never.png").exists()
