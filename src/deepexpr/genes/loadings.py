"""Gene loadings from other methods, to set beside siVAE's gene embedding v.

- :func:`ldvae_loadings`: the linear decoder weights of scvi-tools' LinearSCVI (LDVAE).
- :func:`attribution_loadings`: post-hoc attributions (Captum Integrated Gradients or saliency)
  of a decoder's per-gene output with respect to each latent dimension, turned into one
  loading per gene and dimension as the siVAE paper does: the leading component across cells
  of that dimension's (cells x genes) attribution matrix. We take it uncentred (first right
  singular vector): a centred PCA would drop the mean attribution, which for a nearly linear
  decoder is all of the signal (saliency of a linear decoder is the same in every cell).
- :func:`loading_agreement`: |Spearman| between two loading matrices, dimension by dimension.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from deepexpr.errors import InputError
from deepexpr.interpret.attribution import MIN_STEPS, completeness_gap

ATTRIBUTION_METHODS = ("integrated_gradients", "saliency")
BASELINES = ("min", "zeros")


def ldvae_loadings(
    adata: ad.AnnData,
    n_latent: int = 10,
    layer: str | None = "counts",
    max_epochs: int = 100,
    seed: int = 0,
    **train_kwargs,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Train LinearSCVI on the raw counts; return (genes x dims loadings, cells x dims latent means)."""
    import scvi

    scvi.settings.seed = seed
    data = adata.copy()  # setup_anndata writes into the AnnData; keep the caller's untouched
    scvi.model.LinearSCVI.setup_anndata(data, layer=layer)
    model = scvi.model.LinearSCVI(data, n_latent=n_latent)
    model.train(max_epochs=max_epochs, accelerator="cpu", **train_kwargs)
    return model.get_loadings(), model.get_latent_representation()


def attribution_loadings(
    decoder: torch.nn.Module,
    z: torch.Tensor,
    genes,
    method: str = "integrated_gradients",
    baseline: str = "min",
    n_steps: int = 64,
) -> tuple[pd.DataFrame, float]:
    """Loadings (genes x latent dims) from attributions of ``decoder(z)[:, g]`` to z, and for IG
    the median relative completeness gap over cells and genes (nan for saliency).

    S4: the settings are passed to Captum explicitly (the original silently dropped them):
    IG with ``n_steps`` (at least :data:`~deepexpr.interpret.attribution.MIN_STEPS`) from a
    baseline of each dimension's minimum over cells (``"min"``, the original's) or zeros.
    """
    from captum.attr import IntegratedGradients, Saliency

    if method not in ATTRIBUTION_METHODS:
        raise InputError("attribution.method", f"expected one of {list(ATTRIBUTION_METHODS)}, got {method!r}")
    if baseline not in BASELINES:
        raise InputError("attribution.baseline", f"expected one of {list(BASELINES)}, got {baseline!r}")
    if method == "integrated_gradients" and n_steps < MIN_STEPS:
        raise InputError("attribution.n_steps", f"expected at least {MIN_STEPS} steps, got {n_steps}")
    genes = list(genes)
    z = z.detach()
    decoder.eval()
    reference = z.min(dim=0).values.expand_as(z) if baseline == "min" else torch.zeros_like(z)
    with torch.no_grad():
        f_x, f_x0 = decoder(z).numpy(), decoder(reference).numpy()
    # A decoder ending in a linear layer (hidden(z) @ W^T + b, e.g. siVAE's plain decoder) is explained
    # through its hidden units: IG and saliency are linear in the explained output, so gene g's
    # attributions are sum_h W_gh x (those of hidden unit h). Exact, and it needs one Captum call per
    # hidden unit through the small hidden network instead of one per gene through the full output.
    split = getattr(decoder, "linear_output", None)
    explained, weight = split() if split is not None else (decoder, None)
    n_targets = weight.shape[1] if weight is not None else len(genes)
    per_target = []
    for target in range(n_targets):
        if method == "integrated_gradients":
            attr = IntegratedGradients(explained).attribute(z, baselines=reference, target=target, n_steps=n_steps)
        else:
            attr = Saliency(explained).attribute(z, target=target, abs=False)
        per_target.append(attr.detach().numpy())
    attributions = np.stack(per_target, axis=2)  # cells x dims x targets
    if weight is not None:
        attributions = attributions @ weight.detach().numpy().T  # cells x dims x genes
    gaps = []
    if method == "integrated_gradients":
        gaps = [completeness_gap(attributions[:, :, g], f_x[:, g], f_x0[:, g])[2] for g in range(len(genes))]
    loadings = np.column_stack(
        [np.linalg.svd(attributions[:, d, :], full_matrices=False)[2][0] for d in range(attributions.shape[1])]
    )
    columns = [f"z{d + 1}" for d in range(loadings.shape[1])]
    gap = float(np.median(np.concatenate(gaps))) if gaps else float("nan")
    return pd.DataFrame(loadings, index=pd.Index(genes), columns=columns), gap


def loading_agreement(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """|Spearman| between column d of ``a`` and column d of ``b`` over their shared genes, per d."""
    genes = a.index.intersection(b.index)
    if a.shape[1] != b.shape[1] or len(genes) < 3:
        raise InputError(
            "loadings", f"need the same number of dimensions ({a.shape[1]} vs {b.shape[1]}) and >= 3 shared genes"
        )
    values = [abs(spearmanr(a.loc[genes].iloc[:, d], b.loc[genes].iloc[:, d]).statistic) for d in range(a.shape[1])]
    return pd.Series(values, index=a.columns, name="abs_spearman")


def matched_loading_agreement(reference: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """|Spearman| of each dimension of ``reference`` with the dimension of ``other`` matched to it.

    Two separately trained models number (and sign) their latent dimensions arbitrarily, so
    dimension d of one need not be dimension d of the other: the dimensions are paired one to one
    by maximum total |Spearman| (Hungarian assignment, scipy's linear_sum_assignment). Rows:
    ``dimension``, ``matched`` (the other's dimension), ``abs_spearman``.
    """
    from scipy.optimize import linear_sum_assignment

    genes = reference.index.intersection(other.index)
    if reference.shape[1] != other.shape[1] or len(genes) < 3:
        raise InputError(
            "loadings",
            f"need the same number of dimensions ({reference.shape[1]} vs {other.shape[1]}) and >= 3 shared genes",
        )
    n = reference.shape[1]
    rho = spearmanr(reference.loc[genes].to_numpy(), other.loc[genes].to_numpy()).statistic
    rho = np.atleast_2d(rho)[:n, n:] if n > 1 else np.array([[rho]])
    rows, cols = linear_sum_assignment(-np.abs(np.nan_to_num(rho)))
    return pd.DataFrame(
        {
            "dimension": reference.columns[rows],
            "matched": other.columns[cols],
            "abs_spearman": np.abs(rho[rows, cols]),
        }
    )


def pca_loadings(x: np.ndarray, genes, n_components: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """PCA of the z-scored ``x`` (cells x genes, as siVAE's Gaussian input): (genes x components
    loadings, cells x components scores, per-gene share of variance the components explain)."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    scaled = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    pca = PCA(n_components=n_components, random_state=seed)
    scores = pca.fit_transform(scaled)
    index = pd.Index(genes).astype(str)
    loadings = pd.DataFrame(pca.components_.T, index=index, columns=[f"pc{i + 1}" for i in range(n_components)])
    residual = ((scaled - scores @ pca.components_) ** 2).sum(axis=0)
    explained = 1 - residual / np.maximum((scaled**2).sum(axis=0), 1e-12)
    return loadings, scores, pd.Series(explained, index=index, name="variance_explained")
