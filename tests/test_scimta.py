"""scIMTA library: graphs, bad input, training in both modes, save/load, imputation, search."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepexpr.errors import InputError
from deepexpr.models.scimta import SCIMTA
from deepexpr.models.scimta.graph import check_graph, knn_graph, padded_neighbours, random_surf_ppmi
from deepexpr.evaluate.scimta import imputation_table
from deepexpr.models.scimta.impute import choose_rank, low_rank_impute

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"pretrain_epochs": 3, "cluster_epochs": 3, "batch_size": 64, "leiden_resolutions": [0.5]}


def clustered_counts(n_cells=150, n_genes=60, n_types=3, seed=0) -> ad.AnnData:
    """Poisson counts of ``n_types`` groups with distinct gene programmes."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_types, n_cells)
    base = rng.gamma(2.0, 2.0, n_genes)
    programme = np.ones((n_types, n_genes))
    for t in range(n_types):
        programme[t, rng.choice(n_genes, n_genes // 5, replace=False)] = 6.0
    counts = rng.poisson(base * programme[types]).astype(np.float32)
    counts[:, 0] += 1  # no empty cells
    adata = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame({"cell_type": pd.Categorical(types.astype(str)), "batch": "b1"}, index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    adata.layers["counts"] = adata.X.copy()
    return adata


def test_sparse_ppmi_matches_dense_on_the_knn_support():
    rng = np.random.default_rng(0)
    graph = knn_graph(rng.normal(size=(80, 5)), 5)
    dense = random_surf_ppmi(graph, steps=2, dense=True)
    sparse = random_surf_ppmi(graph, steps=2).toarray()
    assert (graph.toarray() == graph.toarray().T).all()
    support = (graph + sp.identity(80)).toarray() > 0
    assert (sparse[~support] == 0).all()
    # Same construction on a restricted support: strongly correlated, rows max-normalised.
    assert np.corrcoef(dense[support], sparse[support])[0, 1] > 0.8
    assert np.allclose(sparse.max(axis=1), 1.0)


def test_padded_neighbours_keep_every_edge():
    graph = knn_graph(np.random.default_rng(1).normal(size=(40, 3)), 4)
    index, weight = padded_neighbours(graph)
    rebuilt = np.zeros((40, 40))
    for row in range(40):
        rebuilt[row, index[row][weight[row] > 0]] = weight[row][weight[row] > 0]
    assert np.array_equal(rebuilt, graph.toarray())


def test_fewer_cells_than_k_is_an_error():
    with pytest.raises(InputError, match="10 cells but k = 15"):
        knn_graph(np.zeros((10, 3)), 15)


def test_isolated_cells_are_an_error():
    graph = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float))
    with pytest.raises(InputError, match="1 isolated cells"):
        check_graph(graph)
    adata = clustered_counts(n_cells=30)
    SCIMTA.setup_anndata(adata)
    isolated = knn_graph(np.random.default_rng(0).normal(size=(30, 3)), 3).tolil()
    isolated[4, :] = 0
    isolated[:, 4] = 0
    with pytest.raises(InputError, match="isolated"):
        SCIMTA(adata, cell_graph=isolated.tocsr(), **FAST)


def test_zero_count_cells_are_an_error():
    adata = clustered_counts(n_cells=40)
    counts = adata.layers["counts"].toarray()
    counts[3, :] = 0
    adata.layers["counts"] = sp.csr_matrix(counts)
    with pytest.raises(InputError, match="1 cells have zero counts"):
        SCIMTA.setup_anndata(adata)


def test_faithful_dense_mode_refuses_large_data(monkeypatch):
    import deepexpr.models.scimta.model as model_module

    monkeypatch.setattr(model_module, "DENSE_LIMIT", 100)
    adata = clustered_counts(n_cells=150)
    SCIMTA.setup_anndata(adata, labels_key="cell_type")
    with pytest.raises(InputError, match="limited to 100 cells"):
        SCIMTA(adata, mode="faithful", **FAST)


@pytest.mark.parametrize("mode", ["corrected", "faithful"])
def test_training_clusters_and_round_trips(tmp_path, mode):
    adata = clustered_counts()
    SCIMTA.setup_anndata(adata, labels_key="cell_type")
    settings = {**FAST, "pretrain_epochs": 40, "cluster_epochs": 10} if mode == "corrected" else {"pretrain_epochs": 40, "cluster_epochs": 10, "lr_pretrain": 1e-3}
    model = SCIMTA(adata, mode=mode, seed=0, k=10, **settings)
    history = model.train(device="cpu", checkpoint_dir=tmp_path / "ckpt")
    assert set(history["phase"]) == {"pretrain", "cluster"}
    assert np.isfinite(history["loss"]).all()
    predicted = model.predict()
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(adata.obs["cell_type"], predicted) > 0.5
    if mode == "corrected":
        assert model.module.centres.requires_grad
        assert len(model.gene_communities()) == adata.n_vars
    else:
        assert model.n_clusters == 3 and not model.module.centres.requires_grad
    model.save(tmp_path / "model.pt")
    loaded = SCIMTA.load(tmp_path / "model.pt", adata)
    assert np.allclose(loaded.get_latent().to_numpy(), model.get_latent().to_numpy(), atol=1e-5)


def low_rank_with_dropout(seed=0):
    """(truth, observed): log-scale rank-3 data and a copy with 40 % of its entries set to zero."""
    rng = np.random.default_rng(seed)
    truth = np.log1p(rng.gamma(2.0, 1.0, (200, 3)) @ rng.gamma(2.0, 1.0, (3, 50)))
    return truth, truth * (rng.random(truth.shape) > 0.4)


@pytest.mark.parametrize("variant", ["zero_fill", "alra"])
def test_low_rank_imputation_keeps_observed_values_and_lowers_error(variant):
    truth, observed = low_rank_with_dropout()
    imputed, rank = low_rank_impute(observed, variant, seed=0)
    assert 2 <= rank <= 10
    assert (imputed[observed > 0] > 0).all()
    if variant == "zero_fill":
        assert np.array_equal(imputed[observed > 0], observed[observed > 0])
    assert np.mean((imputed - truth) ** 2) < 0.5 * np.mean((observed - truth) ** 2)
    assert choose_rank(np.array([10.0, 9.0, 1.0, 0.9, 0.8, 0.7, 0.6])) == 2


def test_imputation_table_scores_both_variants_against_the_true_counts():
    rng = np.random.default_rng(3)
    types = rng.integers(0, 3, 300)
    programme = rng.gamma(1.0, 1.0, (3, 40)) * 3
    true_counts = rng.poisson(programme[types]).astype(np.float32)
    true_counts[:, 0] += 1
    truth = ad.AnnData(X=sp.csr_matrix(true_counts), var=pd.DataFrame({"de_gene": np.arange(40) < 20}, index=[f"g{j}" for j in range(40)]))
    truth.obs_names = [f"c{i}" for i in range(300)]
    prepared = truth[:, ::-1].copy()  # different gene order: the truth is matched by name
    prepared.layers["counts"] = prepared.X.copy()
    table = imputation_table(prepared, truth, [0.5], [20], rank=None, seed=0)
    assert set(table["values"]) == {"observed", "zero_fill", "alra"}
    assert list(dict.fromkeys(table["scenario"])) == ["as simulated", "50% of non-zeros masked", "thinned to 20 counts/cell"]
    exact = table[(table["scenario"] == "as simulated") & (table["values"] == "observed")]
    assert np.allclose(exact["mse"], 0.0) and np.allclose(exact["median_gene_pearson"], 1.0)
    masked = table[(table["scenario"] == "50% of non-zeros masked") & (table["genes"] == "all")].set_index("values")
    assert masked.loc["zero_fill", "mse"] < masked.loc["observed", "mse"]
    assert masked.loc["zero_fill", "zero_fraction"] < masked.loc["observed", "zero_fraction"]


def test_imputation_rejects_an_unknown_variant():
    with pytest.raises(InputError, match="imputation_variant"):
        low_rank_impute(np.ones((5, 5)), "mean")


def test_imputation_rejects_negative_values():
    with pytest.raises(InputError, match="non-negative"):
        low_rank_impute(-np.ones((5, 5)))


def test_batch_balanced_graph_links_every_cell_to_each_batch():
    rng = np.random.default_rng(2)
    # Two batches far apart: a plain kNN graph never crosses them, the balanced one always does.
    embedding = np.r_[rng.normal(size=(60, 4)), rng.normal(size=(40, 4)) + 50.0]
    batches = np.r_[["a"] * 60, ["b"] * 40]
    plain = knn_graph(embedding, 6)
    balanced = knn_graph(embedding, 6, batches=batches)
    assert plain[:60, 60:].nnz == 0
    for cell in range(100):
        neighbours = batches[balanced[cell].indices]
        assert (neighbours == "a").sum() >= 3 and (neighbours == "b").sum() >= 3
        assert cell not in balanced[cell].indices
    with pytest.raises(InputError, match="batch 'c' has 2 cells"):
        knn_graph(np.r_[embedding, embedding[:2]], 6, batches=np.r_[batches, ["c", "c"]])


def test_model_builds_a_batch_balanced_graph_only_in_corrected_mode():
    adata = clustered_counts()
    adata.obs["batch"] = np.where(np.arange(adata.n_obs) % 2 == 0, "b1", "b2")
    SCIMTA.setup_anndata(adata, labels_key="cell_type", batch_key="batch")
    corrected = SCIMTA(adata, mode="corrected", seed=0, k=6, **FAST)
    faithful = SCIMTA(adata, mode="faithful", seed=0, k=6, pretrain_epochs=1, cluster_epochs=1)
    assert corrected.graph_batches() is not None and faithful.graph_batches() is None
    batch = adata.obs["batch"].to_numpy()
    crossing = [(batch[corrected.cell_graph[c].indices] != batch[c]).sum() for c in range(adata.n_obs)]
    assert min(crossing) >= 3
    assert corrected.module.n_batches == 2 and faithful.module.n_batches == 0
    corrected.train(device="cpu", progress_bar=False)
    # Centres start from the Leiden partition K was chosen from; DEC keeps the planted types.
    assert corrected.n_clusters == len(np.unique(corrected.leiden_labels))
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(adata.obs["cell_type"], corrected.predict()) > 0.8
    with pytest.raises(InputError, match="obs\\['donor'\\]"):
        SCIMTA.setup_anndata(adata, batch_key="donor")
