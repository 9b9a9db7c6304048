"""Figures are drawn from contract-shaped result tables and report the numbers they show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from deepexpr.errors import InputError
from deepexpr.io import write_table
from deepexpr.plots import de, enrich, explain, integration, training
from deepexpr.plots.style import require_columns

SAMPLES = ["DG", "DH", "DI", "DJ", "DK", "DL", "LA", "LB", "LC", "LD", "LE", "LF"]
SEEDS = [0, 1, 2]
N_GENES = 400
TITLE = {"dataset": "sim_bulk", "label": "luminal vs basal (the original's 'lactation vs virgin')", "mode": "corrected"}


def assert_png(path):
    assert path.is_file()
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    # Not a blank canvas: something was drawn.
    assert pixels[..., :3].std() > 0.01


def assert_svg(path):
    assert path.is_file()
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and len(text) > 5_000


@pytest.fixture
def tables(tmp_path):
    """Small result tables shaped like the workflow's (contract schemas), with a planted truth."""
    rng = np.random.default_rng(7)
    gene_id = [f"g{i:04d}" for i in range(1, N_GENES + 1)]
    symbol = [f"Gene{i}" for i in range(1, N_GENES + 1)]
    is_de = rng.random(N_GENES) < 0.2
    true_lfc = np.where(is_de, rng.normal(0, 2.5, N_GENES), 0.0)
    deseq_lfc = true_lfc + rng.normal(0, 0.4, N_GENES)
    pvalue = np.where(is_de, 10 ** -rng.uniform(2, 30, N_GENES), rng.uniform(0, 1, N_GENES))
    padj = np.minimum(pvalue * 3, 1.0)
    padj[0] = 0.0  # an underflowed p-value must still be drawn
    cooks = np.zeros(N_GENES, dtype=bool)
    cooks[[3, 17, 42]] = True
    pvalue[cooks] = np.nan
    padj[cooks] = np.nan
    padj[[5, 6]] = np.nan  # independent filtering: NA padj without being Cook's outliers
    deseq = pd.DataFrame(
        {
            "gene_id": gene_id,
            "symbol": symbol,
            "base_mean": rng.gamma(2, 200, N_GENES),
            "log2fc": deseq_lfc,
            "lfc_se": 0.3,
            "stat": deseq_lfc / 0.3,
            "pvalue": pvalue,
            "padj": padj,
            "log2fc_shrunk": deseq_lfc * 0.9,
            "padj_no_cooks_filter": np.where(cooks, 0.01, padj),
            "cooks_outlier": cooks,
            "naive_log2fc": deseq_lfc + rng.normal(0, 0.2, N_GENES),
        }
    )

    seed_lfc = {s: 0.8 * true_lfc + rng.normal(0, 0.5, N_GENES) for s in SEEDS}
    lfc_mean = np.mean([seed_lfc[s] for s in SEEDS], axis=0)
    lfc_sd = rng.uniform(0.1, 0.6, N_GENES)
    prob_de = 1 / (1 + np.exp(-3 * (np.abs(lfc_mean) - 1) / lfc_sd))
    generative = pd.DataFrame(
        {
            "gene_id": gene_id,
            "symbol": symbol,
            "lfc_mean": lfc_mean,
            "lfc_sd": lfc_sd,
            "lfc_q05": lfc_mean - 1.645 * lfc_sd,
            "lfc_q95": lfc_mean + 1.645 * lfc_sd,
            "prob_de": prob_de,
            "called": prob_de > 0.95,
            **{f"lfc_mean_seed{s}": seed_lfc[s] for s in SEEDS},
        }
    )
    comparison = pd.DataFrame(
        {
            "gene_id": gene_id,
            "symbol": symbol,
            "deseq2_log2fc": deseq_lfc,
            "deseq2_padj": padj,
            "deseq2_log2fc_shrunk": deseq_lfc * 0.9,
            "naive_log2fc": deseq["naive_log2fc"],
            "generative_lfc": lfc_mean,
            "generative_sd": lfc_sd,
            "prob_de": prob_de,
            "called": prob_de > 0.95,
            "cooks_outlier": cooks,
            "true_log2fc": true_lfc,
            "is_de": is_de,
        }
    )

    design = pd.DataFrame(
        {
            "sample": SAMPLES,
            "cell_type": ["basal"] * 6 + ["luminal"] * 6,
            "status": ["virgin", "virgin", "pregnant", "pregnant", "lactate", "lactate"] * 2,
        }
    )
    base = np.where(design["cell_type"] == "luminal", 3.0, -3.0)[:, None] + rng.normal(0, 0.5, (12, 3))
    latents, histories = [], []
    for s in SEEDS:
        angle = 0.7 * s
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        z = base.copy()
        z[:, :2] = base[:, :2] @ rotation + rng.normal(0, 0.1, (12, 2))
        latent = pd.DataFrame({"sample": SAMPLES, "z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2]}).merge(design)
        path = tmp_path / f"models/nbvae/corrected/seed{s}/latent.tsv"
        write_table(latent, path)
        latents.append(path)
        epoch = np.arange(1, 201)
        kl = 50 * np.exp(-epoch / 60) + 5 + s
        beta = np.minimum(epoch / 40, 1.0)
        recon = 1e5 * (1 + 2 * np.exp(-epoch / 30)) * (1 + 0.05 * s)
        history = pd.DataFrame(
            {
                "epoch": epoch,
                "loss": recon + beta * kl,
                "reconstruction": recon,
                "kl": kl,
                "beta": beta,
                "elbo": -(recon + kl),
            }
        )
        path = tmp_path / f"models/nbvae/corrected/seed{s}/history.tsv"
        write_table(history, path)
        histories.append(path)

    pca = design.assign(PC1=base[:, 0] * 4, PC2=rng.normal(0, 1, 12), PC1_variance_ratio=0.62, PC2_variance_ratio=0.11)
    terms = [f"GOBP_TERM_NUMBER_{i}_OF_SOMETHING_METABOLIC_PROCESS" for i in range(40)]
    enrich_rows = []
    for analysis in ("ora_up", "ora_down", "prerank"):
        sizes = rng.integers(15, 300, len(terms))
        p = 10 ** -rng.uniform(0, 12, len(terms))
        enrich_rows.append(
            pd.DataFrame(
                {
                    "analysis": analysis,
                    "term": terms,
                    "size": sizes,
                    "overlap": rng.integers(3, 15, len(terms)) if analysis != "prerank" else np.nan,
                    "pvalue": p,
                    "padj": np.minimum(p * 40, 1.0),
                    "nes": rng.normal(0, 2, len(terms)) if analysis == "prerank" else np.nan,
                    "es": np.nan,
                    "genes": "Gene1;Gene2;Gene3",
                    "rank": np.argsort(np.argsort(p)) + 1,
                }
            )
        )
    paths = {
        "deseq2": tmp_path / "de/deseq2.tsv",
        "generative": tmp_path / "de/corrected/generative.tsv",
        "comparison": tmp_path / "de/corrected/comparison.tsv",
        "pca": tmp_path / "pca.tsv",
        "enrich": tmp_path / "enrich/deseq2_GO_BP.tsv",
    }
    write_table(deseq, paths["deseq2"])
    write_table(generative, paths["generative"])
    write_table(comparison, paths["comparison"])
    write_table(pca, paths["pca"])
    write_table(pd.concat(enrich_rows), paths["enrich"])
    return {
        **paths,
        "latents": latents,
        "histories": histories,
        "out": tmp_path / "figures",
        "frames": {"deseq2": deseq, "generative": generative, "comparison": comparison},
    }


def test_latent_and_pca(tables):
    out = tables["out"] / "latent.png"
    result = training.plot_latent(tables["latents"], out, color_by="cell_type", marker_by="status", **TITLE).numbers
    assert_png(out)
    assert result["n_seeds"] == 3 and result["n_samples"] == 12 and result["latent_dim"] == 3
    # Seeds differ by a rotation plus small noise, so aligned seeds land close to seed 0.
    assert all(rms < 0.5 for rms in result["procrustes_rms"])

    out = tables["out"] / "pca.svg"
    assert training.plot_pca_latent(tables["pca"], out, **TITLE).numbers == {"n_samples": 12}
    assert_svg(out)


def test_loss_curves(tables):
    out = tables["out"] / "loss.png"
    result = training.plot_loss_curves(tables["histories"], out, **TITLE).numbers
    assert_png(out)
    assert result["n_seeds"] == 3 and result["epochs"] == [200.0, 200.0, 200.0]
    last = pd.read_csv(tables["histories"][1], sep="\t")["loss"].iloc[-1]
    assert result["final_loss"][1] == pytest.approx(last)


def test_lfc_scatter_reports_the_correlation_of_the_file(tables):
    out = tables["out"] / "scatter.png"
    result = de.plot_lfc_scatter(tables["comparison"], out, error_bars=20, **TITLE).numbers
    assert_png(out)
    cmp = pd.read_csv(tables["comparison"], sep="\t", na_values=["NA"])
    tested = cmp[cmp["deseq2_padj"].notna()]
    assert result["n_genes"] == N_GENES - 5
    assert result["pearson_r"] == pytest.approx(stats.pearsonr(tested["deseq2_log2fc"], tested["generative_lfc"])[0])
    assert result["spearman_rho"] == pytest.approx(
        stats.spearmanr(tested["deseq2_log2fc"], tested["generative_lfc"])[0]
    )
    assert result["n_cooks_outliers"] == 3

    shrunk = de.plot_lfc_scatter(tables["comparison"], tables["out"] / "shrunk.svg", x="deseq2_log2fc_shrunk").numbers
    assert_svg(tables["out"] / "shrunk.svg")
    assert shrunk["pearson_r"] == pytest.approx(
        stats.pearsonr(tested["deseq2_log2fc_shrunk"], tested["generative_lfc"])[0]
    )


def test_volcanoes_count_what_they_colour(tables):
    out = tables["out"] / "volcano.png"
    result = de.plot_volcano(tables["deseq2"], out, **TITLE).numbers
    assert_png(out)
    d = tables["frames"]["deseq2"]
    assert result["n_up"] == int(((d["padj"] < 0.05) & (d["log2fc"] > 1)).sum())
    assert result["n_down"] == int(((d["padj"] < 0.05) & (d["log2fc"] < -1)).sum())
    assert result["n_na"] == 5 and result["n_tested"] == N_GENES - 5

    out = tables["out"] / "generative_volcano.png"
    result = de.plot_generative_volcano(tables["generative"], out, **TITLE).numbers
    assert_png(out)
    g = tables["frames"]["generative"]
    assert result["has_prob_de"]
    assert result["n_called_up"] == int((g["called"] & (g["lfc_mean"] > 0)).sum())
    assert result["n_called_down"] == int((g["called"] & (g["lfc_mean"] < 0)).sum())


def test_generative_volcano_without_prob_de_draws_the_distribution(tables, tmp_path):
    # Faithful mode: no posterior probability, calls from the original's top/bottom rule.
    faithful = tables["frames"]["generative"].assign(prob_de=np.nan, lfc_sd=np.nan, lfc_q05=np.nan, lfc_q95=np.nan)
    path = tmp_path / "faithful_generative.tsv"
    write_table(faithful, path)
    result = de.plot_generative_volcano(path, tables["out"] / "faithful_volcano.png", mode="faithful").numbers
    assert_png(tables["out"] / "faithful_volcano.png")
    assert not result["has_prob_de"]
    result = de.plot_credible_intervals(path, tables["out"] / "faithful_ci.png", n=10, mode="faithful").numbers
    assert_png(tables["out"] / "faithful_ci.png")
    assert result["n_with_interval"] == 0


def test_na_genes(tables):
    out = tables["out"] / "na_genes.png"
    result = de.plot_na_genes(tables["comparison"], out, **TITLE).numbers
    assert_png(out)
    assert result["n_na"] == 5 and result["n_na_cooks"] == 3 and result["n_tested"] == N_GENES - 5
    assert set(result["na_genes"]) == {"Gene4", "Gene18", "Gene43", "Gene6", "Gene7"}


def test_seed_spread_and_credible_intervals(tables):
    out = tables["out"] / "seed_spread.png"
    result = de.plot_seed_spread(tables["generative"], out, **TITLE).numbers
    assert_png(out)
    g = tables["frames"]["generative"]
    assert result["seeds"] == ["seed 0", "seed 1", "seed 2"]
    assert result["pairwise_pearson"][0][2] == pytest.approx(
        stats.pearsonr(g["lfc_mean_seed0"], g["lfc_mean_seed2"])[0]
    )
    assert result["pearson_vs_pooled"]["seed 1"] == pytest.approx(stats.pearsonr(g["lfc_mean"], g["lfc_mean_seed1"])[0])

    out = tables["out"] / "credible.png"
    result = de.plot_credible_intervals(tables["generative"], out, n=12, **TITLE).numbers
    assert_png(out)
    expected = g.loc[g["lfc_mean"].abs().nlargest(12).index, "symbol"]
    assert set(result["genes"]) == set(expected) and result["n_with_interval"] == 12


def test_roc_and_pr_match_sklearn_on_the_file(tables, tmp_path):
    cmp = tables["frames"]["comparison"]
    truth = cmp["is_de"]
    prob = cmp["prob_de"]
    pvalue = tables["frames"]["deseq2"]["pvalue"]
    deseq_score = (-np.log10(pvalue)).fillna(-1.0)

    out = tables["out"] / "roc.png"
    result = de.plot_roc(tables["comparison"], out, deseq2_tsv=tables["deseq2"], **TITLE).numbers
    assert_png(out)
    assert result["generative"]["auroc"] == pytest.approx(roc_auc_score(truth, prob))
    assert result["deseq2"]["auroc"] == pytest.approx(roc_auc_score(truth, deseq_score))
    assert result["n_de"] == int(truth.sum())

    out = tables["out"] / "pr.svg"
    result = de.plot_pr(tables["comparison"], out, deseq2_tsv=tables["deseq2"], **TITLE).numbers
    assert_svg(out)
    assert result["generative"]["auprc"] == pytest.approx(average_precision_score(truth, prob))
    assert result["naive"]["auprc"] == pytest.approx(average_precision_score(truth, cmp["naive_log2fc"].abs()))

    with pytest.raises(InputError, match="deseq2_pvalue"):
        de.plot_roc(tables["comparison"], tmp_path / "no_pvalue.png")
    no_truth = tmp_path / "no_truth.tsv"
    write_table(cmp.drop(columns="is_de"), no_truth)
    with pytest.raises(InputError, match="is_de"):
        de.plot_pr(no_truth, tmp_path / "no_truth.png", deseq2_tsv=tables["deseq2"])


@pytest.mark.parametrize("analysis", ["ora_up", "prerank"])
def test_enrichment_dots(tables, analysis):
    out = tables["out"] / f"{analysis}.png"
    result = enrich.plot_enrichment_dots(tables["enrich"], out, analysis=analysis, top=15, **TITLE).numbers
    assert_png(out)
    df = pd.read_csv(tables["enrich"], sep="\t", na_values=["NA"])
    part = df[df["analysis"] == analysis]
    significant = part[part["padj"] < 0.05].sort_values("padj")
    assert result["n_significant"] == len(significant) and result["n_tested"] == 40
    assert result["terms"] == list(significant["term"].head(15))


def test_enrichment_without_significant_terms_is_still_a_figure(tables, tmp_path):
    df = pd.read_csv(tables["enrich"], sep="\t", na_values=["NA"]).assign(padj=0.5)
    path = tmp_path / "generative_corrected_KEGG.tsv"
    write_table(df, path)
    out = tmp_path / "empty.png"
    result = enrich.plot_enrichment_dots(path, out, analysis="ora_down").numbers
    assert result == {"n_tested": 40, "n_significant": 0, "terms": []}
    assert out.is_file() and mpimg.imread(out).ndim == 3


def test_shorten_term():
    assert enrich.shorten_term("GOBP_FATTY_ACID_METABOLIC_PROCESS") == "fatty acid metabolic process"
    assert enrich.shorten_term("KEGG_PPAR_SIGNALING_PATHWAY") == "ppar signaling pathway"
    long = enrich.shorten_term("x" * 10 + " " + "y" * 80)
    assert long.endswith("…") and max(len(line) for line in long.splitlines()) <= 45


def test_missing_column_names_file_and_column(tables, tmp_path):
    broken = tmp_path / "comparison_broken.tsv"
    write_table(tables["frames"]["comparison"].drop(columns="cooks_outlier"), broken)
    with pytest.raises(InputError) as excinfo:
        de.plot_lfc_scatter(broken, tmp_path / "never.png")
    assert str(broken) in str(excinfo.value) and "cooks_outlier" in str(excinfo.value)
    assert not (tmp_path / "never.png").exists()

    with pytest.raises(InputError, match="lfc_mean_seed"):
        no_seeds = tmp_path / "no_seeds.tsv"
        write_table(tables["frames"]["generative"].drop(columns=[f"lfc_mean_seed{s}" for s in SEEDS]), no_seeds)
        de.plot_seed_spread(no_seeds, tmp_path / "never.png")

    with pytest.raises(InputError, match="padj"):
        require_columns(pd.DataFrame({"term": []}), ["term", "padj"], "enrich.tsv")


def test_bad_values_and_suffix_are_input_errors(tables, tmp_path):
    text_in_numbers = tables["frames"]["deseq2"].astype({"log2fc": object})
    text_in_numbers.loc[2, "log2fc"] = "high"
    path = tmp_path / "deseq2_text.tsv"
    write_table(text_in_numbers, path)
    with pytest.raises(InputError, match="log2fc.*'high'"):
        de.plot_volcano(path, tmp_path / "v.png")
    with pytest.raises(InputError, match="suffix"):
        de.plot_volcano(tables["deseq2"], tmp_path / "v.jpg")
    assert not list(tmp_path.glob("*.part"))


def test_output_is_deterministic(tables):
    first, second = tables["out"] / "a.svg", tables["out"] / "b.svg"
    training.plot_pca_latent(tables["pca"], first, **TITLE)
    training.plot_pca_latent(tables["pca"], second, **TITLE)
    assert first.read_bytes() == second.read_bytes()


def test_report_captions_match_the_modules(repo_root):
    docutils_core = pytest.importorskip("docutils.core")
    captions = {**de.CAPTIONS, **enrich.CAPTIONS, **integration.CAPTIONS, **explain.CAPTIONS, **training.CAPTIONS}
    report_dir = repo_root / "resources" / "report"
    for name, caption in captions.items():
        rst = (report_dir / f"{name}.rst").read_text()
        assert " ".join(rst.replace("\\|", "|").split()) == caption, name
        # halt_level 2 turns any RST warning (e.g. an unescaped |substitution|) into an exception
        docutils_core.publish_doctree(rst, settings_overrides={"halt_level": 2, "report_level": 5})
