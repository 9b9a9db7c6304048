"""Side-by-side evaluation of generative DE against pyDESeq2 (and the truth when simulated).

Builds the per-gene comparison table and the summary numbers of docs/evaluation.md from the two
DE tables the workflow wrote; figures and the README quote only these files.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.metrics.de import lfc_agreement, top_k_overlap, true_lfc_for_contrast, truth_metrics, auroc

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
