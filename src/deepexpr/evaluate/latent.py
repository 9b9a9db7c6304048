"""Simple baselines that the deep models are compared against."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA


def pca_latent(adata: ad.AnnData, n_components: int = 2) -> pd.DataFrame:
    """PCA of the log-normalised expression ``X``: the linear baseline of a 2-D latent space.

    Returns one row per sample with PC1..PCk, the design columns of ``obs`` (so plots can colour
    by them) and the explained-variance ratio of each component as PC<i>_variance_ratio.
    """
    pca = PCA(n_components=n_components, svd_solver="full")
    scores = pca.fit_transform(np.asarray(adata.X, dtype=float))
    table = pd.DataFrame(
        scores, index=pd.Index(adata.obs_names, name="sample"), columns=[f"PC{i + 1}" for i in range(n_components)]
    )
    for i, ratio in enumerate(pca.explained_variance_ratio_):
        table[f"PC{i + 1}_variance_ratio"] = float(ratio)
    design = adata.obs.drop(columns=["size_factor"], errors="ignore").astype(str)
    return table.join(design).reset_index()
