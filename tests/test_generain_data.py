"""ARCHS4 reader, QC, series split, simulator and Binning-By-Gene (corrected and faithful)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from deepexpr.data.archs4 import (
    BinnedDataset,
    bin_new_samples,
    fit_boundaries,
    gene_map,
    iter_sample_blocks,
    load_boundaries,
    open_archs4,
    prepare_binned,
    rank_bins,
    sample_qc,
    save_boundaries,
    scale_log,
    simulate_archs4,
    split_samples,
    transform,
    write_binned,
)
from deepexpr.data.archs4.read import read_vocabulary
from deepexpr.errors import InputError

QC = {"min_nonzero_genes": 100}


@pytest.fixture(scope="module")
def archs4(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs4")
    attributes = simulate_archs4(root / "sim.h5", root / "attributes.tsv", n_samples=120, n_genes=200, n_modules=4,
                                 module_size=25, seed=3)
    return root, open_archs4(root / "sim.h5"), attributes


def test_simulator_schema_and_truth(archs4):
    root, f, attributes = archs4
    with h5py.File(root / "sim.h5") as handle:
        assert handle["data/expression"].shape == (200, 120)  # genes x samples
        assert handle["meta/samples/geo_accession"].dtype.kind == "S"
    assert f.n_genes == 200 and f.n_samples == 120
    assert (attributes["module"] != "none").sum() == 100
    assert attributes["hub"].sum() == 4 * 3
    assert (root / "attributes.tsv").is_file()
    # Same seed, same file content.
    simulate_archs4(root / "again.h5", n_samples=120, n_genes=200, n_modules=4, module_size=25, seed=3)
    with h5py.File(root / "sim.h5") as a, h5py.File(root / "again.h5") as b:
        np.testing.assert_array_equal(a["data/expression"][()], b["data/expression"][()])


def test_blocks_cover_requested_columns(archs4):
    root, f, _ = archs4
    with h5py.File(root / "sim.h5") as handle:
        full = handle["data/expression"][()]
    columns = [3, 4, 5, 90, 7]
    got = {}
    for index, counts in iter_sample_blocks(f.path, columns, block=2):
        assert counts.shape[1] <= 2 and counts.dtype == np.uint32
        for i, c in zip(index, counts.T):
            got[int(i)] = c
    assert sorted(got) == sorted(columns)
    for i in columns:
        np.testing.assert_array_equal(got[i], full[:, i])


def test_qc_flags(archs4):
    _, f, _ = archs4
    qc = sample_qc(f, **QC)
    high_sc = qc["singlecellprobability"] >= 0.5
    assert high_sc.any() and not qc.loc[high_sc, "keep"].any()
    assert not qc.loc[qc["total_counts"] < 1e6, "keep"].any()
    assert qc["keep"].sum() > 100


def test_split_by_series_keeps_series_whole():
    series = np.array([f"GSE{i % 17}" for i in range(400)] + ["GSE1,GSE2"] * 3, dtype=object)
    split = split_samples(series, seed=1)
    assert set(split) == {"train", "validation", "test"}
    groups = {}
    for s, label in zip(series, split):
        for one in s.split(","):
            groups.setdefault(one, set()).add(label)
    assert all(len(labels) == 1 for labels in groups.values())  # GSE1 and GSE2 joined by the super-series
    np.testing.assert_array_equal(split, split_samples(series, seed=1))
    faithful = split_samples(series, how="sample", seed=1)
    assert set(faithful) == {"train", "validation"} and (faithful == "train").sum() == round(0.9 * 403)


def test_duplicates_sum_or_max_mean(archs4):
    root, f, _ = archs4
    with h5py.File(root / "sim.h5") as handle:
        full = handle["data/expression"][()].astype(float)
    duplicated = f.symbols[-1]
    rows = np.flatnonzero(f.symbols == duplicated)
    assert len(rows) == 2
    summed = gene_map(f, "sum")
    assert len(summed.genes) == 198 and list(summed.genes).count(duplicated) == 1
    g = list(summed.genes).index(duplicated)
    np.testing.assert_allclose(summed.apply(full)[g], full[rows].sum(axis=0))
    kept = gene_map(f, "max_mean")
    best = rows[np.argmax(scale_log(full)[rows].mean(axis=1))]
    np.testing.assert_allclose(kept.apply(full)[g], full[best])


def test_vocabulary_restricts_genes(archs4, tmp_path):
    _, f, _ = archs4
    (tmp_path / "vocab.json").write_text('{"GENE0002": 1, "GENE0001": 0, "OTHER": 2}')
    vocabulary = read_vocabulary(tmp_path / "vocab.json")
    assert vocabulary == ["GENE0001", "GENE0002", "OTHER"]
    assert list(gene_map(f, vocabulary=vocabulary).genes) == ["GENE0001", "GENE0002"]


def test_boundaries_deterministic_and_batch_independent(archs4, tmp_path):
    _, f, _ = archs4
    genes = gene_map(f)
    keep = np.flatnonzero(sample_qc(f, **QC)["keep"])
    b1 = fit_boundaries(f, genes, keep, n_bins=20, fraction=0.5, seed=0)
    b2 = fit_boundaries(f, genes, keep, n_bins=20, fraction=0.5, seed=0)
    np.testing.assert_array_equal(b1, b2)
    finite = np.isfinite(b1).all(axis=1)  # genes never non-zero in the subsample have +inf boundaries
    assert b1.shape == (198, 18) and (np.diff(b1[finite], axis=1) >= 0).all()
    save_boundaries(tmp_path / "b.npz", genes.genes, b1)
    loaded_genes, loaded = load_boundaries(tmp_path / "b.npz")
    assert list(loaded_genes) == list(genes.genes)
    np.testing.assert_array_equal(loaded, b1)
    values = np.concatenate([scale_log(genes.apply(c)) for _, c in iter_sample_blocks(f.path, keep[:20])], axis=1)
    together = transform(values, b1)
    alone = np.concatenate([transform(values[:, [j]], b1) for j in range(20)], axis=1)
    np.testing.assert_array_equal(together, alone)  # a sample's bins do not depend on its batch
    assert together.min() >= 1 and together.max() <= 20
    assert (together[values == 0] == 1).all() and (together[values > 0] >= 2).all()
    tied = np.array([[0.0, 1.0, 1.0, 2.0]])
    bins = transform(tied, np.array([[0.5, 1.0, 1.5]], dtype=np.float32))
    assert bins[0, 0] == 1 and bins[0, 1] == bins[0, 2]  # ties share a bin


def test_compiled_search_equals_numpy_searchsorted():
    # The reference: numpy's searchsorted gene by gene, zeros to bin 1 (the loop transform replaced).
    rng = np.random.default_rng(5)
    values = np.where(rng.random((40, 300)) < 0.3, 0.0, rng.gamma(2.0, 1.0, (40, 300)))
    values[:, :10] = np.round(values[:, :10], 1)  # exact ties with boundaries below
    boundaries = np.sort(rng.gamma(2.0, 1.0, (40, 25)).astype(np.float32), axis=1)
    boundaries[0] = np.inf  # a gene never non-zero in the boundary subsample
    boundaries[1, :5] = np.float32(1.0)  # repeated boundaries
    reference = np.ones(values.shape, dtype=np.uint16)
    for g, row in enumerate(values):
        nonzero = row > 0
        reference[g, nonzero] = 2 + np.searchsorted(boundaries[g], row[nonzero], side="right")
    np.testing.assert_array_equal(transform(values, boundaries), reference)


def test_rank_bins_faithful():
    values = np.array([[0.0, 3.0, 1.0, 2.0, 0.0, 4.0]])
    np.testing.assert_array_equal(rank_bins(values, n_bins=5), [[1, 4, 2, 3, 1, 5]])


def test_write_binned_streams_blocks(archs4, tmp_path):
    _, f, _ = archs4
    genes = gene_map(f)
    qc = sample_qc(f, **QC)
    keep = np.flatnonzero(qc["keep"])
    split = split_samples(qc["series_id"].to_numpy()[keep], seed=0)
    b = fit_boundaries(f, genes, keep[split == "train"], n_bins=30, fraction=1.0)
    out = write_binned(f, genes, keep, split, b, tmp_path / "binned", boundary_genes=genes.genes, block=16)
    data = BinnedDataset(out, split="train")
    assert len(data) == (split == "train").sum()
    values = np.concatenate([scale_log(genes.apply(c)) for _, c in iter_sample_blocks(f.path, keep)], axis=1)
    everything = BinnedDataset(out, split=None).matrix()
    np.testing.assert_array_equal(everything, transform(values, b).T)
    assert data[0].dtype.is_floating_point is False and data[0].shape == (198,)
    assert not list(tmp_path.glob(".binned*"))  # no temporary directory left behind


# ------------------------------------------------------------------ bad input: one error each
def test_not_archs4_layout(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["X"] = np.zeros((3, 3))
    with pytest.raises(InputError, match=r"other\.h5.*data/expression"):
        open_archs4(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match=r"text\.h5.*not an HDF5"):
        open_archs4(tmp_path / "text.h5")


def test_missing_metadata_field(archs4, tmp_path):
    root, _, _ = archs4
    simulate_archs4(tmp_path / "m.h5", n_samples=20, n_genes=60, n_modules=2, module_size=10)
    with h5py.File(tmp_path / "m.h5", "a") as handle:
        del handle["meta/samples/series_id"]
    with pytest.raises(InputError, match=r"m\.h5.*meta/samples/series_id"):
        open_archs4(tmp_path / "m.h5")


def test_genes_absent_from_vocabulary(archs4):
    _, f, _ = archs4
    with pytest.raises(InputError, match=r"vocab\.json.*none of the 200 genes"):
        gene_map(f, vocabulary=["NOPE1", "NOPE2"], vocabulary_source="vocab.json")


def test_qc_removes_every_sample(archs4):
    _, f, _ = archs4
    with pytest.raises(InputError, match=r"sim\.h5.*removed all 120 samples"):
        sample_qc(f)  # the default > 2,000 non-zero genes cannot pass with 200 genes


def test_boundary_file_from_other_genes(archs4, tmp_path):
    _, f, _ = archs4
    genes = gene_map(f)
    b = np.zeros((3, 8), dtype=np.float32)
    save_boundaries(tmp_path / "other.npz", ["A", "B", "C"], b)
    other_genes, other = load_boundaries(tmp_path / "other.npz")
    with pytest.raises(InputError, match=r"other\.npz.*another gene set"):
        write_binned(f, genes, [0, 1], ["train", "train"], other, tmp_path / "out",
                     boundary_source=tmp_path / "other.npz", boundary_genes=other_genes)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("binning", ["boundaries", "rank"])
def test_prepare_binned(archs4, tmp_path, binning):
    root, _, _ = archs4
    faithful = binning == "rank"
    out = prepare_binned(root / "sim.h5", tmp_path / binning, binning=binning, n_bins=30, qc=QC,
                         duplicates="max_mean" if faithful else "sum", split="sample" if faithful else "series")
    everything = BinnedDataset(out, split=None)
    assert everything.n_bins == 30 and everything.matrix().max() <= 30 and everything.matrix().min() >= 1
    assert (out / "qc.tsv").is_file() and (out / "boundaries.npz").is_file() == (binning == "boundaries")
    splits = {"train", "validation"} if faithful else {"train", "validation", "test"}
    assert set(everything.samples["split"]) == splits


def test_new_samples_binned_like_training(archs4, tmp_path):
    """R1: new samples (a genes x samples table) go through the same stored boundaries."""
    root, f, _ = archs4
    out = prepare_binned(root / "sim.h5", tmp_path / "binned", n_bins=30, qc=QC)
    data = BinnedDataset(out, split=None)
    with h5py.File(root / "sim.h5") as handle:
        counts = handle["data/expression"][:, :40]
    table = pd.DataFrame(gene_map(f).apply(counts), index=gene_map(f).genes)
    accessions = list(f.samples["geo_accession"][:40])
    table.columns = accessions
    shuffled = table.sample(frac=1.0, random_state=0)  # row order does not matter, names do
    bins = bin_new_samples(shuffled, out / "boundaries.npz")
    kept = [a for a in accessions if a in set(data.samples["samples"])]
    rows = data.samples.set_index("samples").index.get_indexer(kept)
    np.testing.assert_array_equal(bins.loc[kept].to_numpy(), data.matrix()[rows])
    with pytest.raises(InputError, match=r"boundaries\.npz.*missing from the data"):
        bin_new_samples(table.iloc[:-1], out / "boundaries.npz")
