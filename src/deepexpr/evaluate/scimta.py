"""scIMTA study evaluation: Leiden comparators, ARI/NMI rows, batch metrics, gene communities per
cell cluster, imputation error against the simulated truth, and the label-free search.

Labels are only read to score; every choice (Leiden resolution, K, search winner) is label-free,
except rows whose ``selection`` is ``oracle`` (the best resolution by ARI, labelled as such).
"""

from __future__ import annotations

import itertools
import logging

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from deepexpr.errors import InputError
from deepexpr.models.scimta import SCIMTA, clustering
from deepexpr.models.scimta.graph import knn_graph
from deepexpr.models.scimta.impute import VARIANTS, imputation_error, low_rank_impute
from deepexpr.models.scimta.model import _log_normalised, _pca, _registered_counts

logger = logging.getLogger(__name__)

SCORE_COLUMNS = ["method", "selection", "resolution", "n_clusters", "silhouette", "ari", "nmi"]


def pca_embedding(adata: ad.AnnData, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    counts, library = _registered_counts(adata, "counts")
    return _pca(_log_normalised(counts, library), n_pcs, seed)


def leiden_rows(method: str, embedding: np.ndarray, labels, resolutions, k: int = 15, seed: int = 0, batches=None) -> pd.DataFrame:
    """Leiden on the kNN graph of ``embedding`` (batch-balanced with ``batches``): the label-free
    row (best silhouette) and the oracle row (best ARI, labels used)."""
    graph = knn_graph(embedding, k, seed=seed, source=f"{method} embedding", batches=batches)
    scan = clustering.resolution_scan(embedding, graph, resolutions, seed)
    for row in scan:
        row["ari"] = adjusted_rand_score(labels, row["labels"])
        row["nmi"] = normalized_mutual_info_score(labels, row["labels"])
    chosen = clustering.label_free_choice(scan)
    oracle = max(scan, key=lambda row: row["ari"])
    rows = [
        {"method": method, "selection": selection, **{k: row[k] for k in SCORE_COLUMNS[2:]}}
        for selection, row in (("label_free", chosen), ("oracle", oracle))
    ]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def scimta_row(method: str, predicted: np.ndarray, embedding: np.ndarray, labels) -> dict:
    return {
        "method": method,
        "selection": "label_free",
        "resolution": np.nan,
        "n_clusters": int(len(np.unique(predicted))),
        "silhouette": clustering.silhouette(embedding, predicted),
        "ari": adjusted_rand_score(labels, predicted),
        "nmi": normalized_mutual_info_score(labels, predicted),
    }


def study_scores(prepared: ad.AnnData, scvi_latent: np.ndarray, runs: dict[str, pd.DataFrame], resolutions, seed: int = 0):
    """(scores, UMAP table of the first run, embeddings by name) for Leiden on PCA, Leiden on the
    scVI latent and every scIMTA run (``runs``: name -> cells table with ``cluster`` and z columns).
    With two or more batches, Leiden on the batch-balanced PCA graph (the graph corrected scIMTA
    trains on) is a third comparator, so that scIMTA is not credited for the graph alone."""
    import umap

    labels = prepared.obs["cell_type"].astype(str).to_numpy()
    pca = pca_embedding(prepared, 50, seed)
    embeddings = {"pca": pca, "scvi": scvi_latent}
    tables = [leiden_rows(name, embedding, labels, resolutions, seed=seed) for name, embedding in (("leiden_pca", pca), ("leiden_scvi", scvi_latent))]
    batches = prepared.obs["batch"].astype(str).to_numpy() if "batch" in prepared.obs else None
    if batches is not None and len(np.unique(batches)) > 1:
        tables.insert(1, leiden_rows("leiden_pca_balanced", pca, labels, resolutions, seed=seed, batches=batches))
    umap_table = None
    for name, cells in runs.items():
        cells = cells.reindex(prepared.obs_names)
        z = cells.filter(regex=r"^z\d+$").to_numpy()
        embeddings[name] = z
        tables.append(pd.DataFrame([scimta_row(name, cells["cluster"].to_numpy(), z, labels)]))
        if umap_table is None:
            coordinates = umap.UMAP(random_state=seed, n_jobs=1).fit_transform(z)
            umap_table = pd.DataFrame(
                {"cell": prepared.obs_names, "umap1": coordinates[:, 0], "umap2": coordinates[:, 1], "cluster": cells["cluster"].to_numpy(), "cell_type": labels}
            )
    return pd.concat(tables, ignore_index=True), umap_table, embeddings


def batch_metrics(embeddings: dict[str, np.ndarray], adata: ad.AnnData, pre_integrated: np.ndarray) -> pd.DataFrame:
    """scib-metrics batch scores (batch ASW, iLISI, graph connectivity, PCR) per embedding, on 30
    exact neighbours. kBET is left out: on the 2-core machine it alone took minutes per embedding."""
    from scib_metrics import graph_connectivity, ilisi_knn, pcr_comparison, silhouette_batch

    from deepexpr.metrics.integration import exact_neighbors

    batch = adata.obs["batch"].astype(str).to_numpy()
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    rows = []
    for name, embedding in embeddings.items():
        neighbours = exact_neighbors(embedding, 30)
        rows.append(
            {
                "method": name,
                "silhouette_batch": float(silhouette_batch(embedding, labels, batch)),
                "ilisi": float(ilisi_knn(neighbours, batch)),
                "graph_connectivity": float(graph_connectivity(neighbours, labels)),
                "pcr_comparison": float(pcr_comparison(pre_integrated, embedding, batch, categorical=True)),
            }
        )
    return pd.DataFrame(rows)


def community_scores(values: np.ndarray, genes: pd.Index, clusters: np.ndarray, communities: pd.Series, min_genes: int = 3) -> pd.DataFrame:
    """Mean z-scored expression of each gene community's genes per cell cluster (clusters x
    communities) from ``values`` (cells x ``genes``, e.g. the imputed matrix); communities with
    fewer than ``min_genes`` genes are left out."""
    values = np.asarray(values, dtype=np.float64)
    sd = values.std(axis=0)
    values = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    communities = communities.reindex(genes)
    sizes = communities.value_counts()
    kept = sorted(sizes.index[sizes >= min_genes])
    found = np.unique(clusters)
    return pd.DataFrame(
        {f"community{c}": [values[clusters == k][:, (communities == c).to_numpy()].mean() for k in found] for c in kept},
        index=pd.Index([f"cluster{k}" for k in found], name="cluster"),
    )


def explaining_communities(scores: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Per cell cluster, the communities whose mean z-score exceeds ``threshold``, strongest first."""
    rows = []
    for cluster, row in scores.iterrows():
        for community, value in row[row > threshold].sort_values(ascending=False).items():
            rows.append({"cluster": cluster, "community": community, "mean_z": float(value)})
    return pd.DataFrame(rows, columns=["cluster", "community", "mean_z"])


def truth_log_counts(prepared: ad.AnnData, truth: ad.AnnData) -> np.ndarray:
    """The truth the imputation is scored against: the simulator's true counts (``truth.X``: no
    batch effect, no dropout) of the prepared cells and genes, log-normalised like the data."""
    missing = prepared.obs_names.difference(truth.obs_names)
    if len(missing):
        raise InputError("truth.h5ad", f"{len(missing)} prepared cells are not in the truth, e.g. {list(missing[:3])}")
    counts = truth[prepared.obs_names, prepared.var_names].X
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    return _log_normalised_dense(counts.astype(np.float64))


def _log_normalised_dense(counts: np.ndarray) -> np.ndarray:
    library = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return np.log1p(counts / library * 1e4)


def imputation_scenarios(counts: np.ndarray, mask_fractions, depths, seed: int = 0):
    """(name, counts) of the data as simulated and with added technical zeros: a fraction of the
    non-zero entries set to zero at random (dropout), or binomial thinning to a number of counts
    per cell (shallow sequencing)."""
    rng = np.random.default_rng(seed)
    yield "as simulated", counts
    for fraction in mask_fractions:
        masked = counts.copy()
        masked[(masked > 0) & (rng.random(masked.shape) < fraction)] = 0
        yield f"{fraction:.0%} of non-zeros masked", masked
    for depth in depths:
        keep = np.minimum(1.0, depth / np.maximum(counts.sum(axis=1, keepdims=True), 1))
        yield f"thinned to {depth} counts/cell", rng.binomial(counts, keep)


def imputation_table(prepared: ad.AnnData, truth: ad.AnnData, mask_fractions, depths, rank, seed: int = 0) -> pd.DataFrame:
    """Error against the true counts of the observed values and of both imputation variants, per
    scenario (:func:`imputation_scenarios`), over all genes and over the simulated DE genes
    (``truth.var['de_gene']``, the genes with cell-type signal a low-rank model can recover)."""
    counts, _ = _registered_counts(prepared, "counts")
    target = truth_log_counts(prepared, truth)
    subsets = {"all": np.ones(prepared.n_vars, bool)}
    if "de_gene" in truth.var.columns:
        subsets["de"] = truth.var["de_gene"].reindex(prepared.var_names).fillna(False).to_numpy(bool)
    rows = []
    for scenario, observed_counts in imputation_scenarios(counts.toarray().astype(np.int64), mask_fractions, depths, seed):
        observed = _log_normalised_dense(observed_counts)
        candidates = {"observed": (observed, np.nan)}
        for variant in VARIANTS:
            candidates[variant] = low_rank_impute(observed, variant, rank=rank, seed=seed)
        for genes, mask in subsets.items():
            for name, (values, used_rank) in candidates.items():
                rows.append(
                    {
                        "scenario": scenario,
                        "genes": genes,
                        "values": name,
                        "zero_fraction": float((values[:, mask] == 0).mean()),
                        "rank": used_rank,
                        **imputation_error(values[:, mask], target[:, mask]),
                    }
                )
    return pd.DataFrame(rows)


def search(adata: ad.AnnData, base_settings: dict, space: dict, seed: int, device: str, labels_key: str | None) -> pd.DataFrame:
    """Train one model per point of the grid ``space`` (setting -> values); objective = mean
    silhouette of its clusters on z (label-free, C1). NMI/ARI are only reported."""
    keys = list(space)
    rows = []
    for values in itertools.product(*(space[k] for k in keys)):
        point = dict(zip(keys, values))
        model = SCIMTA(adata, mode="corrected", seed=seed, **{**base_settings, **point})
        model.train(device=device)
        z = model.get_latent().to_numpy()
        predicted = model.predict().to_numpy()
        row = {**{k: str(v) for k, v in point.items()}, "silhouette": clustering.silhouette(z, predicted, seed)}
        if labels_key is not None:
            labels = adata.obs[labels_key].astype(str).to_numpy()
            row["ari"] = adjusted_rand_score(labels, predicted)
            row["nmi"] = normalized_mutual_info_score(labels, predicted)
        row["n_clusters"] = int(len(np.unique(predicted)))
        logger.info("search %s: silhouette %.3f", point, row["silhouette"])
        rows.append(row)
    table = pd.DataFrame(rows)
    table["chosen"] = table["silhouette"] == table["silhouette"].max()
    return table
