"""Side-by-side evaluation of generative DE against pyDESeq2 (and the truth when simulated).

Builds the per-gene comparison table and the summary numbers of docs/evaluation.md from the two
DE tables the workflow wrote; figures and the README quote only these files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.de.generative import posterior_fdr_calls
from deepexpr.metrics.de import auprc, auroc, lfc_agreement, observed_fdr, top_k_overlap, true_lfc_for_contrast, truth_metrics

DESEQ2_COLUMNS = {
    "log2fc": "deseq2_log2fc",
    "padj": "deseq2_padj",
    "pvalue": "deseq2_pvalue",
    "log2fc_shrunk": "deseq2_log2fc_shrunk",
    "naive_log2fc": "naive_log2fc",
    "cooks_outlier": "cooks_outlier",
}
GENERATIVE_COLUMNS = {"lfc_mean": "generative_lfc", "lfc_sd": "generative_sd", "prob_de": "prob_de", "called": "called"}
SEED_COLUMN = re.compile(r"^lfc_mean_seed(\d+)$")
TOP_K = 500


def _require(table: pd.DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(source, f"missing column(s) {missing}")


def comparison_table(
    deseq2: pd.DataFrame, generative: pd.DataFrame, truth: pd.DataFrame | None = None, contrast: dict | None = None
) -> pd.DataFrame:
    """One row per gene that both methods report, with the columns the figures read."""
    _require(deseq2, ["gene_id", "symbol", *DESEQ2_COLUMNS], "deseq2 table")
    _require(generative, ["gene_id", *GENERATIVE_COLUMNS], "generative table")
    left = deseq2[["gene_id", "symbol", *DESEQ2_COLUMNS]].rename(columns=DESEQ2_COLUMNS)
    right = generative[["gene_id", *GENERATIVE_COLUMNS]].rename(columns=GENERATIVE_COLUMNS)
    table = left.astype({"gene_id": str}).merge(right.astype({"gene_id": str}), on="gene_id", how="inner")
    if truth is not None:
        true_lfc = true_lfc_for_contrast(truth, contrast)
        table["true_log2fc"] = table["gene_id"].map(true_lfc)
        if table["true_log2fc"].isna().any():
            raise InputError("truth table", f"genes without a true LFC, e.g. {table.loc[table['true_log2fc'].isna(), 'gene_id'].iloc[0]}")
        table["is_de"] = table["true_log2fc"] != 0
    return table


def _as_bool(values: pd.Series) -> pd.Series:
    return values.astype(str).str.lower().isin(["true", "1"])


def summarize(
    comparison: pd.DataFrame,
    deseq2: pd.DataFrame,
    generative: pd.DataFrame,
    contrast: dict,
    mode: str,
    delta: float,
    fdr_target: float,
) -> dict:
    """Summary numbers of one contrast and mode (the keys of summary.json)."""
    tested = comparison[comparison["deseq2_padj"].notna()]
    padj = deseq2["padj"]
    na_genes = comparison[comparison["deseq2_padj"].isna() & comparison["deseq2_pvalue"].isna()]
    agreement = lfc_agreement(tested["generative_lfc"], tested["deseq2_log2fc"])
    naive = lfc_agreement(tested["naive_log2fc"], tested["deseq2_log2fc"])
    shrunk = lfc_agreement(tested["generative_lfc"], tested["deseq2_log2fc_shrunk"])
    seeds = {}
    for column in generative.columns:
        match = SEED_COLUMN.match(column)
        if match:
            per_seed = generative.set_index(generative["gene_id"].astype(str))[column]
            seeds[int(match[1])] = lfc_agreement(
                tested.set_index("gene_id")["deseq2_log2fc"], per_seed
            )["pearson"]
    deseq2_called = tested.loc[(tested["deseq2_padj"] < 0.05) & (tested["deseq2_log2fc"].abs() > 1), "gene_id"]
    by_gene = tested.set_index("gene_id")
    summary = {
        "contrast": contrast["name"],
        "label": contrast["label"],
        "design": contrast["design"],
        "mode": mode,
        "n_genes": int(len(deseq2)),
        "n_modelled": int(len(generative)),
        "n_compared": int(len(tested)),
        "n_deseq2_padj05": int((padj < 0.05).sum()),
        "n_deseq2_na": int(padj.isna().sum()),
        "n_deseq2_cooks_outliers": int(_as_bool(deseq2["cooks_outlier"]).sum()),
        "na_genes": [
            {
                "gene_id": row.gene_id,
                "symbol": row.symbol,
                "deseq2_log2fc": row.deseq2_log2fc,
                "generative_lfc": row.generative_lfc,
                "cooks_outlier": bool(_as_bool(pd.Series([row.cooks_outlier])).iloc[0]),
            }
            for row in na_genes.itertuples()
        ],
        "pearson_lfc": agreement["pearson"],
        "spearman_lfc": agreement["spearman"],
        "pearson_lfc_seeds": [seeds[k] for k in sorted(seeds)],
        "naive_pearson_lfc": naive["pearson"],
        "naive_spearman_lfc": naive["spearman"],
        "shrunk_pearson_lfc": shrunk["pearson"],
        "shrunk_spearman_lfc": shrunk["spearman"],
        "auroc_deseq2_calls": auroc(by_gene["generative_lfc"].abs(), by_gene.index.isin(deseq2_called)),
        "top500_up": top_k_overlap(by_gene["generative_lfc"], by_gene["deseq2_log2fc"], TOP_K, "up", deseq2_called),
        "top500_down": top_k_overlap(by_gene["generative_lfc"], by_gene["deseq2_log2fc"], TOP_K, "down", deseq2_called),
        "n_generative_called": int(_as_bool(comparison["called"]).sum()),
        "delta": delta,
        "fdr_target": fdr_target,
    }
    if "is_de" in comparison:
        summary["truth"] = truth_summary(comparison, fdr_target)
    return summary


def truth_summary(comparison: pd.DataFrame, fdr_target: float) -> dict:
    """AUROC, AUPRC, observed FDR and calls of each method against the simulated truth."""
    is_de = comparison["is_de"].to_numpy(dtype=bool)
    deseq2_score = -np.log10(comparison["deseq2_pvalue"].astype(float))
    deseq2_called = (comparison["deseq2_padj"] < fdr_target).to_numpy()
    generative_score = comparison["prob_de"].astype(float)
    if generative_score.isna().all():  # faithful mode has no posterior probability: rank by |LFC|
        generative_score = comparison["generative_lfc"].abs()
    return {
        "n_true_de": int(is_de.sum()),
        "deseq2": truth_metrics(deseq2_score.to_numpy(), deseq2_called, is_de),
        "generative": truth_metrics(generative_score.to_numpy(), _as_bool(comparison["called"]).to_numpy(), is_de),
        "naive_auroc": auroc(comparison["naive_log2fc"].abs().to_numpy(), is_de),
    }


# ------------------------------------------------ DE statistics side by side (calibration, agreement)
NOMINAL_FDRS = (0.01, 0.05, 0.10)
PROB_SEED_COLUMN = re.compile(r"^prob_de_seed(\d+)$")


def _call_metrics(called: np.ndarray, is_de: np.ndarray | None, deseq2_called: np.ndarray) -> dict:
    metrics = {
        "n_called": float(called.sum()),
        "jaccard_deseq2": float((called & deseq2_called).sum() / max((called | deseq2_called).sum(), 1)),
    }
    if is_de is not None:
        metrics["observed_fdr"] = observed_fdr(called, is_de)
        metrics["tpr"] = float((called & is_de).sum() / max(is_de.sum(), 1))
    return metrics


def _ranking_metrics(score: np.ndarray, lfc: np.ndarray, is_de, deseq2: pd.DataFrame) -> dict:
    deseq2_called = (deseq2["padj"] < 0.05).to_numpy()
    metrics = {
        "auroc_deseq2_calls": auroc(score, deseq2_called),
        "pearson_lfc_deseq2": lfc_agreement(lfc, deseq2["log2fc"].to_numpy())["pearson"],
    }
    if is_de is not None:
        metrics["auroc"] = auroc(score, is_de)
        metrics["auprc"] = auprc(score, is_de)
    return metrics


def de_statistics_table(
    deseq2: pd.DataFrame,
    generative: Mapping[str, pd.DataFrame],
    truth: pd.DataFrame | None,
    contrast: dict,
    nominal_fdrs=NOMINAL_FDRS,
) -> pd.DataFrame:
    """pyDESeq2 and each generative statistic side by side at nominal FDRs 1/5/10 %.

    One row per method and nominal FDR: calls (DESeq2: padj < nominal; generative: the posterior
    expected-FDR rule at the nominal level), their Jaccard overlap with DESeq2's calls at the same
    level, and the ranking's AUROC for DESeq2's padj < 0.05 calls and LFC Pearson with DESeq2.
    With ``truth`` (simulated data; true DE = true LFC != 0) also the observed FDR, the true
    positive rate, AUROC and AUPRC. Generative statistics are scored on the seed-pooled posterior
    (plain columns) and, when the table has ``prob_de_seed<k>`` columns, as mean and sd over the
    seeds' own posteriors (``<metric>_seed_mean`` / ``<metric>_seed_sd``).
    Genes are those both tables report.
    """
    _require(deseq2, ["gene_id", "log2fc", "padj", "pvalue"], "deseq2 table")
    genes = deseq2["gene_id"].astype(str)
    for name, table in generative.items():
        _require(table, ["gene_id", "lfc_mean", "prob_de"], f"generative table {name}")
        genes = genes[genes.isin(table["gene_id"].astype(str))]
    deseq2 = deseq2.assign(gene_id=deseq2["gene_id"].astype(str)).set_index("gene_id").loc[genes].reset_index()
    is_de = None
    if truth is not None:
        true_lfc = true_lfc_for_contrast(truth, contrast)
        missing = genes[~genes.isin(true_lfc.index)]
        if len(missing):
            raise InputError("truth table", f"genes without a true LFC, e.g. {missing.iloc[0]}")
        is_de = (true_lfc.loc[genes] != 0).to_numpy()
    padj = deseq2["padj"].to_numpy(dtype=float)
    deseq2_score = -np.log10(deseq2["pvalue"].to_numpy(dtype=float))
    rows = []
    for nominal in nominal_fdrs:
        deseq2_called = np.nan_to_num(padj, nan=1.0) < nominal
        rows.append(
            {
                "method": "deseq2",
                "nominal_fdr": nominal,
                "n_seeds": 0,
                **_call_metrics(deseq2_called, is_de, deseq2_called),
                **_ranking_metrics(deseq2_score, deseq2["log2fc"].to_numpy(), is_de, deseq2),
            }
        )
        for name, table in generative.items():
            table = table.assign(gene_id=table["gene_id"].astype(str)).set_index("gene_id").loc[genes]
            row = {"method": name, "nominal_fdr": nominal}
            prob = table["prob_de"].to_numpy(dtype=float)
            row.update(_call_metrics(posterior_fdr_calls(prob, nominal), is_de, deseq2_called))
            row.update(_ranking_metrics(prob, table["lfc_mean"].to_numpy(dtype=float), is_de, deseq2))
            per_seed = []
            for column in table.columns:
                match = PROB_SEED_COLUMN.match(str(column))
                if match:
                    seed_prob = table[column].to_numpy(dtype=float)
                    seed_lfc = table[f"lfc_mean_seed{match[1]}"].to_numpy(dtype=float)
                    per_seed.append(
                        {
                            **_call_metrics(posterior_fdr_calls(seed_prob, nominal), is_de, deseq2_called),
                            **_ranking_metrics(seed_prob, seed_lfc, is_de, deseq2),
                        }
                    )
            row["n_seeds"] = len(per_seed)
            if len(per_seed) > 1:
                seeds = pd.DataFrame(per_seed)
                for metric in seeds.columns:
                    row[f"{metric}_seed_mean"] = float(seeds[metric].mean())
                    row[f"{metric}_seed_sd"] = float(seeds[metric].std(ddof=1))
            rows.append(row)
    return pd.DataFrame(rows)


def dispersion_truth_table(
    estimates: Mapping[str, pd.Series], truth: pd.DataFrame, min_base_mean: float = 10.0
) -> pd.DataFrame:
    """How well each per-gene dispersion estimate (alpha, a Series by gene id) recovers the
    simulator's true dispersion: Pearson and Spearman correlation of log alpha, the median
    log2(estimate / truth) (bias) and its median absolute value, over all genes the estimate
    covers and over genes with true base mean >= ``min_base_mean`` (where counts carry enough
    information to estimate a dispersion at all)."""
    _require(truth, ["gene_id", "base_mean", "dispersion"], "truth table")
    truth = truth.assign(gene_id=truth["gene_id"].astype(str)).set_index("gene_id")
    rows = []
    for name, alpha in estimates.items():
        alpha = alpha.copy()
        alpha.index = alpha.index.astype(str)
        for subset, keep in (("all", None), (f"base_mean>={min_base_mean:g}", min_base_mean)):
            genes = alpha.index[alpha.index.isin(truth.index)]
            if keep is not None:
                genes = genes[truth.loc[genes, "base_mean"].to_numpy() >= keep]
            estimate = np.log2(alpha.loc[genes].to_numpy(dtype=float))
            true = np.log2(truth.loc[genes, "dispersion"].to_numpy(dtype=float))
            finite = np.isfinite(estimate) & np.isfinite(true)
            ratio = estimate[finite] - true[finite]
            agreement = lfc_agreement(estimate[finite], true[finite])
            rows.append(
                {
                    "estimate": name,
                    "genes": subset,
                    "n_genes": int(finite.sum()),
                    "pearson_log": agreement["pearson"],
                    "spearman": agreement["spearman"],
                    "median_log2_ratio": float(np.median(ratio)) if ratio.size else np.nan,
                    "median_abs_log2_ratio": float(np.median(np.abs(ratio))) if ratio.size else np.nan,
                }
            )
    return pd.DataFrame(rows)
