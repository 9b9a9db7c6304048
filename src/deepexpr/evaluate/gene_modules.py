"""Gene-side truth scores of a simulation with planted modules: neighbourhood precision@k and hub AUROC.

Composes :mod:`deepexpr.genes`: any method that yields neighbourhoods (an embedding or a
network) and hub scores is scored the same way, so siVAE, siVAE-0, LDVAE and the correlation
and mutual-information networks sit in one table.
"""

from __future__ import annotations

import pandas as pd

from deepexpr.genes import hub_auroc, neighbourhood_precision

COLUMNS = ["method", "k", "precision", "hub_auroc"]


def score_method(
    method: str, neighbours: pd.DataFrame, hub_scores: pd.Series, truth_var: pd.DataFrame, k: int = 20
) -> dict:
    """One row: mean precision@k over module genes, and the hub scores' AUROC for ``truth_var["hub_gene"]``."""
    precision = neighbourhood_precision(neighbours, truth_var["module"], k).mean()
    return {
        "method": method,
        "k": k,
        "precision": float(precision),
        "hub_auroc": hub_auroc(hub_scores, truth_var["hub_gene"]),
    }


def score_table(
    methods: dict[str, tuple[pd.DataFrame, pd.Series]], truth_var: pd.DataFrame, k: int = 20
) -> pd.DataFrame:
    """``methods`` maps a name to (neighbours, hub scores); one row per method (``COLUMNS``)."""
    rows = [score_method(name, nbrs, hubs, truth_var, k) for name, (nbrs, hubs) in methods.items()]
    return pd.DataFrame(rows, columns=COLUMNS)
