"""Tables of the siVAE study, from the files its method rules wrote.

Method names are the file keys of the rules: ``sivae_seed0``, ``sivae0_seed1``, ``vae_seed0`` for
the trained variants (one per seed), plain names (``ldvae``, ``pca``, ``ig``, ...) for the others.
Tables give one row per run and, for methods run with several seeds, a ``seed = "mean"`` row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepexpr.evaluate.cell_embedding import knn_accuracy
from deepexpr.evaluate.gene_modules import score_method
from deepexpr.genes import matched_loading_agreement, neighbourhood_jaccard

#: obsm key of each trained variant's or method's cell embedding; siVAE-0 is a siVAE run.
EMBEDDING_KEYS = {"sivae": "X_sivae", "sivae0": "X_sivae", "vae": "X_vae", "ldvae": "X_ldvae", "pca": "X_pca"}


def split_name(name: str) -> tuple[str, str]:
    """('sivae', '0') for 'sivae_seed0'; ('ldvae', '-') for a method without seeds."""
    method, _, seed = name.partition("_seed")
    return method, seed or "-"


def with_seed_means(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` plus a ``seed = "mean"`` row of ``columns`` for every method run with more than one seed."""
    seeded = table[table["seed"] != "-"]
    groups = seeded.groupby("method", sort=False)
    means = groups[columns].mean()[groups.size() > 1].reset_index()
    means["seed"] = "mean"
    return pd.concat([table, means], ignore_index=True)


def knn_table(runs: dict[str, tuple[np.ndarray, pd.Series]], seed: int = 0) -> pd.DataFrame:
    """``runs`` maps a run name to (cell embedding, cell labels); rows method, seed, knn_accuracy."""
    rows = []
    for name, (embedding, labels) in runs.items():
        method, run_seed = split_name(name)
        rows.append({"method": method, "seed": run_seed, "knn_accuracy": knn_accuracy(embedding, labels, seed=seed)})
    return with_seed_means(pd.DataFrame(rows), ["knn_accuracy"])


def truth_table(genes: dict[str, tuple[pd.DataFrame, pd.Series]], truth_var: pd.DataFrame, k: int) -> pd.DataFrame:
    """Precision@k against the planted modules and hub AUROC per method run, over the genes each
    method saw (the prepared data keeps the highly variable genes only)."""
    rows = []
    for name, (neighbours, hubs) in genes.items():
        method, seed = split_name(name)
        var = truth_var.loc[neighbours.index]
        row = score_method(method, neighbours, hubs, var, k=k)
        rows.append({**row, "seed": seed, "n_module_genes": int((var["module"] >= 0).sum())})
    table = with_seed_means(pd.DataFrame(rows), ["precision", "hub_auroc", "n_module_genes"])
    table["k"] = k
    return table[["method", "seed", "k", "precision", "hub_auroc", "n_module_genes"]]


def agreement_table(loadings: dict[str, pd.DataFrame], seconds: dict[str, float]) -> pd.DataFrame:
    """|Spearman| of the first entry's loadings (siVAE) with each other's, per dimension (matched one
    to one), with the seconds each method took (``seconds`` by the same names)."""
    reference_name, *others = list(loadings)
    frames = []
    for name in others:
        agreement = matched_loading_agreement(loadings[reference_name], loadings[name])
        agreement.insert(0, "method", split_name(name)[0])
        agreement["seconds"] = seconds[name]
        frames.append(agreement)
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "reference", split_name(reference_name)[0])
    table["reference_seconds"] = seconds[reference_name]
    return table


def jaccard_table(neighbours: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean Jaccard of the top-k neighbourhoods of every ordered pair of methods (long format)."""
    names = list(neighbours)
    # Jaccard is symmetric: compute each unordered pair once.
    pairs = {
        (a, b): float(neighbourhood_jaccard(neighbours[a], neighbours[b]).mean())
        for i, a in enumerate(names)
        for b in names[i:]
    }
    rows = [{"method_a": a, "method_b": b, "jaccard": pairs.get((a, b), pairs.get((b, a)))} for a in names for b in names]
    return pd.DataFrame(rows)


def marker_table(genes: dict[str, tuple[pd.DataFrame, pd.Series]], markers) -> pd.DataFrame:
    """Each marker's neighbours by every method and its rank by that method's hub score (1 = top);
    markers absent from the data get a row with present False."""
    rows = []
    for name, (neighbours, hubs) in genes.items():
        ranks = hubs.rank(ascending=False, method="min")
        for marker in markers:
            present = marker in neighbours.index
            rows.append(
                {
                    "marker": marker,
                    "method": name,
                    "present": present,
                    "hub_rank": int(ranks[marker]) if present else None,
                    "neighbours": ",".join(neighbours.loc[marker]) if present else "",
                }
            )
    return pd.DataFrame(rows, columns=["marker", "method", "present", "hub_rank", "neighbours"])
