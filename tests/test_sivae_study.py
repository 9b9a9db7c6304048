"""The siVAE study's library pieces: gene tables, matched loading agreement, attribution through a
linear output layer, and the seed-mean tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepexpr.evaluate.sivae import marker_table, truth_table, with_seed_means
from deepexpr.genes import (
    attribution_loadings,
    embedding_neighbours,
    matched_loading_agreement,
    read_gene_table,
    write_gene_table,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gene_table_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    embedding = pd.DataFrame(rng.normal(size=(30, 3)), index=[f"g{i}" for i in range(30)])
    neighbours = embedding_neighbours(embedding, k=5)
    hubs = pd.Series(rng.normal(size=30), index=embedding.index)
    write_gene_table(hubs, neighbours, tmp_path / "genes.tsv")
    read_neighbours, read_hubs = read_gene_table(tmp_path / "genes.tsv")
    assert read_neighbours.equals(neighbours)
    np.testing.assert_allclose(read_hubs.to_numpy(), hubs.to_numpy())


def test_matched_agreement_finds_permuted_and_flipped_dimensions():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(rng.normal(size=(200, 4)), columns=["v1", "v2", "v3", "v4"])
    other = -reference[["v3", "v1", "v4", "v2"]].set_axis(["a", "b", "c", "d"], axis=1)
    table = matched_loading_agreement(reference, other)
    assert list(table["matched"]) == ["b", "d", "a", "c"]
    np.testing.assert_allclose(table["abs_spearman"], 1.0)


class _Decoder(nn.Module):
    """hidden(z) @ W^T + b, with or without the linear_output hook."""

    def __init__(self, hook: bool):
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 8))
        self.weight = nn.Parameter(torch.randn(12, 8))
        self.bias = nn.Parameter(torch.randn(12))
        if hook:
            self.linear_output = lambda: (self.hidden, self.weight)

    def forward(self, z):
        return self.hidden(z) @ self.weight.T + self.bias


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency"])
def test_attribution_through_hidden_units_equals_per_gene(method):
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    genes = [f"g{i}" for i in range(12)]
    direct, gap_direct = attribution_loadings(_Decoder(hook=False), z, genes, method=method)
    hidden, gap_hidden = attribution_loadings(_Decoder(hook=True), z, genes, method=method)
    np.testing.assert_allclose(np.abs(hidden.to_numpy()), np.abs(direct.to_numpy()), atol=1e-4)
    if method == "integrated_gradients":
        assert gap_hidden == pytest.approx(gap_direct, abs=1e-3)


def test_truth_table_scores_every_run_and_averages_seeds():
    genes = pd.Index([f"g{i}" for i in range(8)])
    truth_var = pd.DataFrame({"module": [0, 0, 0, 1, 1, 1, -1, -1], "hub_gene": [1, 0, 0, 1, 0, 0, 0, 0]}, index=genes)
    perfect = pd.DataFrame([["g1", "g2"], ["g0", "g2"], ["g0", "g1"], ["g4", "g5"], ["g3", "g5"], ["g3", "g4"], ["g7", "g0"], ["g6", "g0"]], index=genes, columns=[1, 2])
    wrong = perfect.iloc[::-1].set_axis(genes)
    hubs = pd.Series([1, 0, 0, 1, 0, 0, 0, 0], index=genes, dtype=float)
    table = truth_table({"sivae_seed0": (perfect, hubs), "sivae_seed1": (wrong, -hubs), "correlation": (perfect, hubs)}, truth_var, k=2)
    rows = table.set_index(["method", "seed"])
    assert rows.loc[("sivae", "0"), "precision"] == 1.0
    assert rows.loc[("sivae", "mean"), "precision"] == pytest.approx((1.0 + rows.loc[("sivae", "1"), "precision"]) / 2)
    assert rows.loc[("correlation", "-"), "hub_auroc"] == 1.0
    assert ("correlation", "mean") not in rows.index  # one run: no mean row
    assert list(with_seed_means(pd.DataFrame({"method": ["a"], "seed": ["-"], "x": [1.0]}), ["x"])["seed"]) == ["-"]


def test_marker_table_lists_absent_markers():
    genes = pd.Index(["CD3E", "LYZ", "g2", "g3"])
    neighbours = pd.DataFrame([["g2", "g3"], ["g3", "g2"], ["CD3E", "g3"], ["LYZ", "g2"]], index=genes, columns=[1, 2])
    hubs = pd.Series([0.1, 0.9, 0.5, 0.2], index=genes)
    table = marker_table({"sivae_seed0": (neighbours, hubs)}, ["CD3E", "LYZ", "MS4A1"]).set_index("marker")
    assert table.loc["CD3E", "neighbours"] == "g2,g3" and table.loc["LYZ", "hub_rank"] == 1
    assert not table.loc["MS4A1", "present"] and table.loc["MS4A1", "neighbours"] == ""


def test_embedding_figures_are_written(tmp_path):
    from deepexpr.plots.sivae import plot_cell_embedding, plot_gene_embedding

    rng = np.random.default_rng(3)
    genes = pd.Index([f"g{i}" for i in range(40)])
    truth_var = pd.DataFrame({"module": np.repeat([0, 1, -1, -1], 10), "hub_gene": np.arange(40) % 10 == 0}, index=genes)
    plot_cell_embedding(rng.normal(size=(60, 4)), np.repeat(["T", "B", "NK"], 20), out=tmp_path / "cells.png")
    plot_gene_embedding(rng.normal(size=(40, 2)), genes, truth_var, out=tmp_path / "genes.png")
    plot_gene_embedding(rng.normal(size=(40, 3)), genes, None, markers=["g1", "g5"], out=tmp_path / "markers.png")
    for name in ("cells", "genes", "markers"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
