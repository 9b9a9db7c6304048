"""Cell-embedding quality as the siVAE paper scores it: cross-validated kNN accuracy on cell labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from deepexpr.errors import InputError


def knn_accuracy(embedding, labels, n_folds: int = 5, seed: int = 0, n_neighbors: int | None = None) -> float:
    """Mean accuracy over stratified folds of a kNN classifier on the embedding (k = 2 x classes by default).

    Labels with fewer cells than folds cannot be stratified and raise an InputError naming them.
    """
    x = np.asarray(embedding, dtype=np.float64)
    y = pd.Series(np.asarray(labels)).astype(str)
    if len(y) != len(x):
        raise InputError("labels", f"{len(y)} labels for {len(x)} cells")
    counts = y.value_counts()
    rare = list(counts.index[counts < n_folds])
    if rare:
        raise InputError("labels", f"classes {rare} have fewer than {n_folds} cells; drop them or use fewer folds")
    k = n_neighbors or 2 * len(counts)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k), x, y.to_numpy(), cv=folds)
    return float(scores.mean())
