"""Gene-side analyses: neighbourhoods, hubs, correlation and MI networks, and their truth scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepexpr.errors import InputError
from deepexpr.evaluate.cell_embedding import knn_accuracy
from deepexpr.evaluate.gene_modules import score_table
from deepexpr.genes import (
    correlation_network,
    embedding_neighbours,
    hub_auroc,
    mutual_information_network,
    neighbourhood_jaccard,
    neighbourhood_precision,
    network_neighbours,
    norm_hub_score,
    reconstruction_hub_score,
    weighted_degree,
)


@pytest.fixture(scope="module")
def planted():
    """300 cells x 60 genes: three 10-gene modules, each driven by one hub, plus 30 noise genes."""
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(60)]
    signal = rng.standard_normal((300, 3))
    x = rng.standard_normal((300, 60))
    module = np.full(60, -1)
    hub = np.zeros(60, dtype=bool)
    for k in range(3):
        members = np.arange(10 * k, 10 * k + 10)
        module[members] = k
        hub[members[0]] = True
        coupling = np.r_[3.0, rng.uniform(0.8, 1.5, 9)]
        x[:, members] += signal[:, [k]] * coupling
    var = pd.DataFrame({"module": module, "hub_gene": hub}, index=genes)
    return x, genes, var


def test_embedding_neighbours_exclude_self_and_are_nearest_first():
    emb = pd.DataFrame([[0.0], [1.0], [3.0], [10.0]], index=list("abcd"))
    table = embedding_neighbours(emb, k=2)
    assert table.loc["a"].tolist() == ["b", "c"] and table.loc["d"].tolist() == ["c", "b"]
    with pytest.raises(InputError, match="k"):
        embedding_neighbours(emb, k=4)


def test_networks_recover_planted_modules_and_hubs(planted):
    x, genes, var = planted
    corr = correlation_network(x, genes)
    mi = mutual_information_network(x, genes)
    for network in (corr, mi):
        assert np.allclose(network.to_numpy(), network.to_numpy().T) and (np.diag(network) == 0).all()
        assert neighbourhood_precision(network_neighbours(network, 9), var["module"]).mean() > 0.8
    assert hub_auroc(weighted_degree(corr), var["hub_gene"]) > 0.9
    table = score_table(
        {
            "correlation": (network_neighbours(corr, 9), weighted_degree(corr)),
            "mi": (network_neighbours(mi, 9), weighted_degree(mi)),
        },
        var,
        k=9,
    )
    assert list(table["method"]) == ["correlation", "mi"] and (table["precision"] > 0.8).all()


def test_jaccard_of_identical_tables_is_one_and_of_disjoint_zero():
    a = pd.DataFrame([["b", "c"], ["a", "c"]], index=["a", "b"])
    b = pd.DataFrame([["d", "e"], ["a", "c"]], index=["a", "b"])
    assert neighbourhood_jaccard(a, b).tolist() == [0.0, 1.0]


def test_hub_scores():
    genes = ["a", "b", "c"]
    observed = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    recon = reconstruction_hub_score(observed, observed + np.array([0.0, 0.5, 1.0]), genes)
    assert recon.tolist() == [1.0, 0.75, 0.0]
    assert norm_hub_score(pd.DataFrame([[3.0, 4.0], [0.0, 1.0]], index=["a", "b"])).tolist() == [-5.0, -1.0]
    with pytest.raises(InputError, match="hubs"):
        hub_auroc(recon, pd.Series(False, index=genes))


def test_knn_accuracy_separates_informative_from_random_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    good = rng.standard_normal((120, 2)) + np.repeat(np.eye(3, 2) * 6, 40, axis=0)
    assert knn_accuracy(good, labels) > 0.95
    assert knn_accuracy(rng.standard_normal((120, 2)), labels) < 0.6
    with pytest.raises(InputError, match="labels"):
        knn_accuracy(good[:44], labels[:44])


def test_attribution_loadings_of_a_linear_decoder_recover_its_weights():
    from deepexpr.genes.loadings import attribution_loadings, loading_agreement

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    decoder = torch.nn.Linear(3, 12)
    z = torch.randn(50, 3)
    weights = pd.DataFrame(
        decoder.weight.detach().numpy(), index=[f"g{i}" for i in range(12)], columns=["z1", "z2", "z3"]
    )
    for method in ("integrated_gradients", "saliency"):
        loadings, gap = attribution_loadings(decoder, z, weights.index, method=method)
        # a linear decoder's attribution to z_d is w_gd (z_d - baseline): its first PC is w_.d up to sign
        assert (loading_agreement(weights, loadings) > 0.99).all()
        assert np.isnan(gap) if method == "saliency" else gap < 1e-3
    with pytest.raises(InputError, match="attribution.n_steps"):
        attribution_loadings(decoder, z, weights.index, n_steps=8)


def test_ldvae_loadings_have_one_row_per_gene():
    from deepexpr.data.singlecell.simulate import simulate_singlecell
    from deepexpr.genes.loadings import ldvae_loadings

    raw, _ = simulate_singlecell({"n_genes": 40, "batch_cells": [60]}, 0)
    loadings, latent = ldvae_loadings(raw, n_latent=3, max_epochs=2, batch_size=30)
    assert loadings.shape == (40, 3) and list(loadings.index) == list(raw.var_names) and latent.shape == (60, 3)
    assert "_scvi_uuid" not in raw.uns
