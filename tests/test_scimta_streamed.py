"""Streamed (out-of-core) scIMTA: partition store from an .h5ad, IVF kNN recall, training, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from deepexpr.errors import InputError
from deepexpr.models.scimta.store import PartitionStore, open_or_build
from deepexpr.models.scimta.streamed import StreamedSCIMTA, _induced_graph, _subgraph_target
from test_scimta import clustered_counts

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"n_pcs": 20, "k": 10, "partition_size": 128, "n_probe": 4}


def write(adata, path):
    adata.write_h5ad(path)
    return path


def test_training_recovers_planted_types_and_streams_outputs_in_file_order(tmp_path):
    adata = clustered_counts(n_cells=1200, n_genes=60)
    path = write(adata, tmp_path / "cells.h5ad")
    model = StreamedSCIMTA.from_h5ad(
        path, tmp_path / "store", seed=0, n_clusters=3, pretrain_epochs=10, cluster_epochs=6, refresh_every=3, **SMALL
    )
    assert model.store.sizes.max() <= SMALL["partition_size"] and model.store.n_cells == adata.n_obs
    history = model.train(device="cpu")
    assert set(history["phase"]) == {"pretrain", "cluster"} and np.isfinite(history["loss"]).all()
    predicted = model.predict()
    assert list(predicted.index) == list(adata.obs_names)
    assert adjusted_rand_score(adata.obs["cell_type"], predicted) > 0.8
    latent = model.get_latent()
    assert latent.shape == (adata.n_obs, model.config["latent_dim"]) and list(latent.index) == list(adata.obs_names)
    model.save(tmp_path / "model.pt")
    loaded = StreamedSCIMTA.load(tmp_path / "model.pt")
    assert np.allclose(loaded.get_latent().to_numpy(), latent.to_numpy(), atol=1e-5)
    write(adata[::-1].copy(), path)
    with pytest.raises(InputError, match="changed since the store"):
        StreamedSCIMTA.load(tmp_path / "model.pt")


def test_ivf_knn_recall_against_exact_neighbours(tmp_path):
    adata = clustered_counts(n_cells=1500, n_genes=60, seed=1)
    store = open_or_build(write(adata, tmp_path / "cells.h5ad"), tmp_path / "store", "counts", seed=0, **SMALL)
    pca = np.vstack([store.read(p, ("pca",))["pca"] for p in range(store.n_partitions)])
    approximate = np.vstack([store.read(p, ("knn",))["knn"] for p in range(store.n_partitions)])
    _, exact = NearestNeighbors(n_neighbors=SMALL["k"] + 1).fit(pca).kneighbors(pca)
    exact = exact[:, 1:]
    recall = np.mean([len(set(a) & set(e)) / SMALL["k"] for a, e in zip(approximate, exact)])
    assert store.n_partitions > SMALL["n_probe"]  # the search really is restricted
    assert recall > 0.85  # 0.92 measured; 0.54 with n_probe = 1


def test_store_is_reused_when_unchanged_and_rebuilt_when_the_data_change(tmp_path):
    adata = clustered_counts(n_cells=400, n_genes=40)
    path = write(adata, tmp_path / "cells.h5ad")
    first = open_or_build(path, tmp_path / "store", "counts", seed=0, **SMALL)
    built = os.stat(first.directory / "manifest.json").st_mtime_ns
    again = open_or_build(path, tmp_path / "store", "counts", seed=0, **SMALL)
    assert os.stat(again.directory / "manifest.json").st_mtime_ns == built
    adata.layers["counts"] = adata.layers["counts"] * 2
    write(adata, path)
    rebuilt = open_or_build(path, tmp_path / "store", "counts", seed=0, **SMALL)
    assert rebuilt.manifest["fingerprint"]["mtime_ns"] == os.stat(path).st_mtime_ns
    library = np.concatenate([rebuilt.read(p, ("library",))["library"] for p in range(rebuilt.n_partitions)])
    assert library.sum() == pytest.approx(adata.layers["counts"].sum())


def corrupt(kind):
    adata = clustered_counts(n_cells=200, n_genes=40)
    counts = adata.layers["counts"].toarray()
    if kind == "fractional":
        counts[3, 5] = 0.5
    elif kind == "zero cells":
        counts[[7, 150]] = 0
    elif kind == "few cells":
        adata, counts = adata[:8].copy(), counts[:8]
    adata.layers["counts"] = sp.csr_matrix(counts)
    if kind == "missing layer":
        del adata.layers["counts"]
    return adata


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing layer", "layer not found"),
        ("fractional", "integer counts"),
        ("zero cells", r"2 cells of rows 0-199 have zero counts .*'c7', 'c150'"),
        ("few cells", "need more than k cells"),
    ],
)
def test_bad_input_names_file_and_key_and_leaves_no_store(tmp_path, kind, message):
    path = write(corrupt(kind), tmp_path / "bad.h5ad")
    with pytest.raises(InputError, match=message) as error:
        StreamedSCIMTA.from_h5ad(path, tmp_path / "store", **SMALL)
    assert str(path) in str(error.value) and "layers['counts']" in str(error.value)
    assert list(tmp_path.iterdir()) == [path]


def test_settings_the_streamed_path_lacks_fail_before_any_store_is_built(tmp_path):
    path = write(clustered_counts(n_cells=200, n_genes=40), tmp_path / "cells.h5ad")
    with pytest.raises(InputError, match="scimta.graph: the streamed path needs graph='sparse'"):
        StreamedSCIMTA.from_h5ad(path, tmp_path / "store", mode="faithful")
    assert list(tmp_path.iterdir()) == [path]


def test_batch_subgraph_keeps_inside_edges_and_gives_isolated_cells_a_self_loop():
    # two partitions at global positions 10-12 and 0-1; neighbours outside (e.g. 5, 20) are dropped
    knn = np.array([[11, 5], [10, 20], [0, 5], [12, 20], [30, 31]])
    graph = _induced_graph(knn, starts=np.array([10, 0]), sizes=np.array([3, 2])).toarray()
    expected = np.zeros((5, 5))
    for a, b in [(0, 1), (2, 3), (1, 0), (3, 2)]:
        expected[a, b] = 1
    assert np.array_equal(graph, expected)
    target = _subgraph_target(sp.csr_matrix(graph), steps=2, restart=0.98).toarray()
    assert target[4, 4] == 1.0 and target[4, :4].sum() == 0
    assert (target[:4] > 0).sum(axis=1).min() >= 1


def test_loaded_store_matches_what_was_built(tmp_path):
    adata = clustered_counts(n_cells=300, n_genes=40)
    built = open_or_build(write(adata, tmp_path / "cells.h5ad"), tmp_path / "store", "counts", seed=0, **SMALL)
    reopened = PartitionStore(built.directory)
    cells = np.concatenate([reopened.read(p, ("cell",))["cell"] for p in range(reopened.n_partitions)])
    assert sorted(cells) == list(range(adata.n_obs))
    counts = sp.vstack([reopened.read(p, ("counts",))["counts"] for p in range(reopened.n_partitions)])
    assert np.array_equal(counts.toarray(), adata.layers["counts"][cells].toarray())
