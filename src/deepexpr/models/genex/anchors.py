"""Mutual-nearest-neighbour anchors between batches, the local target of GENEX's generator.

An adversarial critic only matches distributions: a generator can fool it while sending a cell to
the wrong neighbourhood of the target batch, and the batches then mix globally but not locally
(low iLISI/kBET). Anchors give each cell a concrete destination: cells of batch s and t that are
among each other's ``k`` nearest neighbours (cosine distance on a PCA of the uncorrected values,
as MNN-correct and Scanorama find them) are pairs, and the generator's map of a cell to batch t is
pulled toward one of its partners in t. No label enters: pairs come from expression alone.

Anchors are found on at most ``max_cells`` cells (a seeded sample beyond that), so memory and
time stay bounded when a million cells are streamed from disk; the other cells train without an
anchor term. Pairs found on uncorrected values sit where the batches already touch; GENEX therefore
searches again during training on its current correction of the same cells (``transform``), where
the batches overlap more and the pairs spread over whole cell populations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from deepexpr.data.stream import MatrixSource

#: Partners kept per cell and target batch (the first found in each batch pair).
MAX_PARTNERS = 10


@dataclass
class Anchors:
    """Partners of the anchored cells: ``partners[i, t, :counts[i, t]]`` are the cells of batch t
    paired with cell ``cells[i]`` (row indices of the training matrix), -1 after them."""

    cells: np.ndarray
    partners: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Partners per anchored cell and batch."""
        return (self.partners >= 0).sum(axis=2)

    def summary(self, n_cells: int) -> dict:
        """How many cells have a partner in another batch, and how many partners they have on average."""
        counts = self.counts
        anchored = counts.sum(axis=1) > 0
        return {
            "cells_searched": int(len(self.cells)),
            "fraction_anchored": float(anchored.sum() / max(n_cells, 1)),
            "mean_partners": float(counts[counts > 0].mean()) if anchored.any() else 0.0,
        }

    def draw(self, rows: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One random partner in its target batch for each cell of a mini-batch that has one.

        ``targets`` holds batch codes, or -1 for no target (e.g. the null token). Returns the
        positions in the mini-batch with a partner and those partners' row indices. The pick uses
        torch's CPU generator, whose state the checkpoints keep, so a resumed run draws alike.
        """
        position = np.searchsorted(self.cells, rows)
        position = np.minimum(position, len(self.cells) - 1)
        in_sample = (self.cells[position] == rows) & (targets >= 0)
        target = np.where(in_sample, targets, 0)
        counts = np.where(in_sample, (self.partners[position, target] >= 0).sum(axis=1), 0)
        pick = (torch.rand(len(rows)).numpy() * np.maximum(counts, 1)).astype(np.int64)
        chosen = np.flatnonzero(counts > 0)
        return chosen, self.partners[position[chosen], target[chosen], pick[chosen]]


def find_anchors(
    source: MatrixSource,
    batch_codes: np.ndarray,
    n_batches: int,
    k: int,
    max_cells: int,
    seed: int,
    n_pcs: int = 50,
    transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Anchors:
    """Mutual k-nearest-neighbour pairs between every two batches (see the module docstring).

    ``transform(values, cells)`` maps the sampled cells' values before the search; partners are
    still row indices of ``source``, so the generator is pulled toward real cells.
    """
    rng = np.random.default_rng(seed)
    n_cells = len(batch_codes)
    cells = np.arange(n_cells) if n_cells <= max_cells else np.sort(rng.choice(n_cells, max_cells, replace=False))
    values = source.rows(cells)
    if transform is not None:
        values = transform(values, cells)
    n_components = max(1, min(n_pcs, values.shape[1] - 1, len(cells) - 1))
    embedding = PCA(n_components=n_components, random_state=seed).fit_transform(values)
    embedding /= np.linalg.norm(embedding, axis=1, keepdims=True) + 1e-12
    codes = batch_codes[cells]
    members = [np.flatnonzero(codes == b) for b in range(n_batches)]
    found: list[tuple[np.ndarray, np.ndarray, int]] = []  # (positions, partner positions, partner batch)
    for s in range(n_batches):
        for t in range(s + 1, n_batches):
            if len(members[s]) == 0 or len(members[t]) == 0:
                continue
            a, b = _mutual_pairs(embedding[members[s]], embedding[members[t]], k)
            found.append((members[s][a], members[t][b], t))
            found.append((members[t][b], members[s][a], s))
    partners = np.full((len(cells), n_batches, MAX_PARTNERS), -1, dtype=np.int64)
    for positions, partner_positions, batch in found:
        order = np.argsort(positions, kind="stable")
        positions, partner_positions = positions[order], partner_positions[order]
        # Rank of each pair among those of the same cell; the first MAX_PARTNERS are kept.
        first = np.searchsorted(positions, positions)
        rank = np.arange(len(positions)) - first
        keep = rank < MAX_PARTNERS
        partners[positions[keep], batch, rank[keep]] = cells[partner_positions[keep]]
    return Anchors(cells=cells, partners=partners)


def _mutual_pairs(left: np.ndarray, right: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with right[j] among the k nearest of left[i] and left[i] among those of right[j]."""
    k_right, k_left = min(k, len(right)), min(k, len(left))
    to_right = NearestNeighbors(n_neighbors=k_right).fit(right).kneighbors(left, return_distance=False)
    to_left = NearestNeighbors(n_neighbors=k_left).fit(left).kneighbors(right, return_distance=False)
    forward = np.repeat(np.arange(len(left)), k_right) * len(right) + to_right.ravel()
    backward = to_left.ravel() * len(right) + np.repeat(np.arange(len(right)), k_left)
    mutual = np.intersect1d(forward, backward)
    return mutual // len(right), mutual % len(right)
