"""Mutual-nearest-neighbour anchors between batches (GENEX's local target)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import torch

from deepexpr.data.stream import MatrixSource
from deepexpr.models.genex.anchors import MAX_PARTNERS, find_anchors


def two_batches_two_types(n_per_group: int = 40, seed: int = 0) -> tuple[ad.AnnData, np.ndarray, np.ndarray]:
    """Two cell types far apart; batch 1 is batch 0 shifted on every gene (a shift smaller than the types' gap)."""
    rng = np.random.default_rng(seed)
    n_genes = 30
    centres = {"T": np.zeros(n_genes), "B": np.r_[np.full(15, 6.0), np.zeros(15)]}
    blocks, batches, types = [], [], []
    for batch, shift in ((0, 0.0), (1, 1.5)):
        for cell_type, centre in centres.items():
            blocks.append(centre + shift * np.r_[np.ones(15), -np.ones(15)] / 3 + rng.normal(0, 0.3, (n_per_group, n_genes)))
            batches += [batch] * n_per_group
            types += [cell_type] * n_per_group
    return ad.AnnData(np.vstack(blocks).astype(np.float32)), np.array(batches), np.array(types)


def test_anchors_pair_cells_of_the_same_type_across_batches():
    adata, batches, types = two_batches_two_types()
    anchors = find_anchors(MatrixSource(adata), batches, n_batches=2, k=5, max_cells=10_000, seed=0)
    assert np.array_equal(anchors.cells, np.arange(adata.n_obs))
    assert (anchors.counts[:, 0][batches == 0] == 0).all() and (anchors.counts[:, 1][batches == 1] == 0).all()
    assert anchors.counts.max() <= MAX_PARTNERS
    pairs = [(i, p) for i in range(adata.n_obs) for t in (0, 1) for p in anchors.partners[i, t, : anchors.counts[i, t]]]
    assert len(pairs) > adata.n_obs // 2
    for cell, partner in pairs:
        assert batches[partner] != batches[cell]
        assert types[partner] == types[cell]
        # Mutual: the partner lists the cell back.
        assert cell in anchors.partners[partner, batches[cell], : anchors.counts[partner, batches[cell]]]
    summary = anchors.summary(adata.n_obs)
    assert 0.25 < summary["fraction_anchored"] <= 1.0 and summary["mean_partners"] >= 1


def test_anchors_on_a_sample_and_draws_respect_targets():
    adata, batches, _ = two_batches_two_types()
    anchors = find_anchors(MatrixSource(adata), batches, n_batches=2, k=5, max_cells=60, seed=0)
    assert len(anchors.cells) == 60 and np.all(np.diff(anchors.cells) > 0)
    listed = anchors.partners[anchors.partners >= 0]
    assert np.isin(listed, anchors.cells).all()
    rows = np.arange(adata.n_obs)
    targets = 1 - batches
    targets[::2] = -1  # no target (the null token): never anchored
    torch.manual_seed(0)
    positions, partners = anchors.draw(rows, targets)
    assert len(positions) > 0 and np.all(targets[positions] >= 0)
    assert np.isin(rows[positions], anchors.cells).all()
    assert np.array_equal(batches[partners], targets[positions])
    torch.manual_seed(0)
    again = anchors.draw(rows, targets)
    assert np.array_equal(again[1], partners)
