"""Gene-attribute prediction: how well does a gene embedding predict what a gene is?

Each gene set (a GMT line, a gene list, a planted module) is one binary attribute. For every
attribute, genes are split into stratified folds once (seeded) and the *same* folds serve every
embedding, so embeddings are compared on identical train/test genes. A standardised L2 logistic
regression (C = 1, balanced classes) is fitted per fold; out-of-fold scores give ROC-AUC and AUPRC
per attribute. :func:`compare_embeddings` pairs two embeddings over attributes (wins, losses,
Wilcoxon signed-rank). Only genes embedded by every compared method are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepexpr.enrich import read_gmt
from deepexpr.errors import InputError
from deepexpr.io import atomic_path



def attribute_labels(
    gene_sets: Mapping[str, Sequence[str]], genes: Sequence[str], min_size: int = 10, max_size: int = 500
) -> pd.DataFrame:
    """Binary genes x attributes table; attributes keep ``min_size``..``max_size`` positives among ``genes``."""
    genes = pd.Index(list(genes))
    columns = {}
    for name, members in gene_sets.items():
        label = genes.isin(set(members))
        if min_size <= label.sum() <= max_size and label.sum() < len(genes):
            columns[name] = label
    return pd.DataFrame(columns, index=genes, dtype=bool)


def shared_genes(embeddings: Mapping[str, pd.DataFrame]) -> pd.Index:
    """Genes embedded by every method, in the first embedding's order."""
    names = list(embeddings)
    common = embeddings[names[0]].index
    for name in names[1:]:
        common = common.intersection(embeddings[name].index, sort=False)
    return common


def attribute_folds(labels: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fold number (0..n_folds-1) of every gene for every attribute: stratified, seeded, fixed."""
    folds = {}
    for k, name in enumerate(labels.columns):
        y = labels[name].to_numpy()
        assignment = np.empty(len(y), dtype=np.int64)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed + k)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
            assignment[test] = fold
        folds[name] = assignment
    return pd.DataFrame(folds, index=labels.index)


def score_embedding(embedding: pd.DataFrame, labels: pd.DataFrame, folds: pd.DataFrame, c: float = 1.0) -> pd.DataFrame:
    """Out-of-fold ROC-AUC and AUPRC per attribute: tidy ``attribute, metric, value``."""
    missing = labels.index.difference(embedding.index)
    if len(missing):
        raise InputError("embedding", f"{len(missing)} labelled genes are not embedded, e.g. {list(missing[:3])}")
    x = embedding.loc[labels.index].to_numpy(dtype=np.float64)
    rows = []
    for name in labels.columns:
        y, fold = labels[name].to_numpy(), folds[name].to_numpy()
        scores = np.empty(len(y))
        for k in np.unique(fold):
            test = fold == k
            classifier = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=1000))
            classifier.fit(x[~test], y[~test])
            scores[test] = classifier.decision_function(x[test])
        rows += [(name, "roc_auc", roc_auc_score(y, scores)), (name, "auprc", average_precision_score(y, scores))]
    return pd.DataFrame(rows, columns=["attribute", "metric", "value"])


def benchmark(
    embeddings: Mapping[str, pd.DataFrame],
    gene_sets: Mapping[str, Sequence[str]],
    n_folds: int = 5,
    min_size: int = 10,
    max_size: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Score every embedding on the same genes, attributes and folds: ``method, attribute, metric, value``.

    Raises an InputError when the embeddings share no gene or no attribute has enough positives.
    """
    genes = shared_genes(embeddings)
    labels = attribute_labels(gene_sets, genes, min_size, max_size)
    if labels.shape[1] == 0:
        raise InputError(
            "gene sets", f"no attribute has {min_size}..{max_size} positives among the {len(genes)} shared genes"
        )
    folds = attribute_folds(labels, n_folds, seed)
    tables = [score_embedding(e, labels, folds).assign(method=name) for name, e in embeddings.items()]
    return pd.concat(tables, ignore_index=True)[["method", "attribute", "metric", "value"]]


def compare_embeddings(scores: pd.DataFrame, first: str, second: str, metric: str = "roc_auc") -> dict:
    """Paired comparison of two methods over attributes: wins, losses, ties, median difference and
    the two-sided Wilcoxon signed-rank p-value (NaN when every difference is zero)."""
    wide = scores[scores["metric"] == metric].pivot(index="attribute", columns="method", values="value")
    difference = (wide[first] - wide[second]).to_numpy()
    p = float("nan") if np.all(difference == 0) else float(wilcoxon(difference).pvalue)
    return {
        "first": first,
        "second": second,
        "metric": metric,
        "attributes": len(difference),
        "wins": int((difference > 0).sum()),
        "losses": int((difference < 0).sum()),
        "ties": int((difference == 0).sum()),
        "median_difference": float(np.median(difference)),
        "wilcoxon_p": p,
    }


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Per method and metric: mean, median and IQR over attributes."""
    grouped = scores.groupby(["method", "metric"])["value"]
    return pd.DataFrame({
        "mean": grouped.mean(), "median": grouped.median(),
        "q25": grouped.quantile(0.25), "q75": grouped.quantile(0.75), "attributes": grouped.size(),
    }).reset_index()  # fmt: skip


def read_gene_list(path, column: str | None = None) -> list[str]:
    """Gene symbols of a list file: the named ``column`` of a CSV/TSV with a header, or else the
    first whitespace-separated field of every non-empty line (plain lists, TSVs without header).
    Raises an InputError naming the file when the column is missing or no gene is listed."""
    if column is not None:
        table = pd.read_csv(path, sep="," if str(path).endswith(".csv") else "\t", dtype=str)
        if column not in table.columns:
            raise InputError(path, f"no column {column!r} (columns: {list(table.columns)})")
        genes = table[column].dropna().str.strip().tolist()
    else:
        with open(path, encoding="utf-8") as handle:
            genes = [line.split()[0] for line in handle if line.strip()]
    genes = list(dict.fromkeys(g for g in genes if g))
    if not genes:
        raise InputError(path, "no gene listed")
    return genes


def write_gene_sets(gene_sets: Mapping[str, Sequence[str]], path) -> None:
    """Write ``{name: genes}`` as GMT (description column = ``na``), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for name, genes in gene_sets.items():
            handle.write("\t".join([name, "na", *genes]) + "\n")
