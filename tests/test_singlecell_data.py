"""Single-cell readers, validation, QC/normalisation/HVGs and marker labelling (tiny files + real subsets)."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
import yaml

from deepexpr.data.singlecell.prepare import (
    NORMALIZE_DEFAULTS,
    cell_label_table,
    prepare_singlecell,
    stratified_subsample,
    validate_singlecell,
)
from deepexpr.data.singlecell.simulate import simulate_singlecell
from deepexpr.data.singlecell.read import (
    read_10x_h5,
    read_10x_mtx,
    read_cell_metadata,
    read_h5ad_counts,
    read_singlecell,
    read_tran_tsv,
)
from deepexpr.errors import InputError
from deepexpr.io import read_table

RNG = np.random.default_rng(0)
GENES = [f"G{i}" for i in range(8)]


def _counts(n_genes: int, n_cells: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(2.0, size=(n_genes, n_cells))


def _open(path: Path, gz: bool):
    return gzip.open(path.with_name(path.name + ".gz"), "wt") if gz else open(path, "w")


def write_mtx(folder: Path, counts: np.ndarray, features: list[list[str]], cells: list[str], gz=True, legacy=False) -> Path:
    """A 10x folder: matrix.mtx (genes x cells), features.tsv (or legacy genes.tsv), barcodes.tsv."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = folder / "matrix.mtx"
    scipy.io.mmwrite(buffer, sp.coo_matrix(counts), field="integer")
    if gz:
        with open(buffer, "rb") as src, gzip.open(folder / "matrix.mtx.gz", "wb") as dst:
            dst.write(src.read())
        buffer.unlink()
    with _open(folder / ("genes.tsv" if legacy else "features.tsv"), gz) as stream:
        stream.write("".join("\t".join(row) + "\n" for row in features))
    with _open(folder / "barcodes.tsv", gz) as stream:
        stream.write("".join(c + "\n" for c in cells))
    return folder


def write_10x_h5(path: Path, counts: np.ndarray, ids: list[str], names: list[str], types: list[str], cells: list[str]) -> Path:
    """A minimal Cell Ranger v3 HDF5 (matrix group with CSC data and a features group)."""
    csc = sp.csc_matrix(counts)  # genes x cells: columns are cells, as Cell Ranger stores them
    with h5py.File(path, "w") as f:
        group = f.create_group("matrix")
        group["data"] = csc.data.astype(np.int32)
        group["indices"] = csc.indices.astype(np.int64)
        group["indptr"] = csc.indptr.astype(np.int64)
        group["shape"] = np.array(counts.shape, dtype=np.int32)
        group["barcodes"] = np.array(cells, dtype="S")
        features = group.create_group("features")
        features["id"] = np.array(ids, dtype="S")
        features["name"] = np.array(names, dtype="S")
        features["feature_type"] = np.array(types, dtype="S")
        features["genome"] = np.array(["GRCh38"] * len(ids), dtype="S")
        features["_all_tag_keys"] = np.array([b"genome"])
    return path


def write_tran(path: Path, counts: np.ndarray, genes: list[str], cells: list[str], r_style: bool = False) -> Path:
    """Tran et al. layout: genes x cells, first column the gene; R's write.table omits the corner cell."""
    table = pd.DataFrame(counts, index=genes, columns=cells)
    text = table.to_csv(sep="\t", index_label="" if not r_style else None)
    if r_style:
        lines = text.splitlines()
        lines[0] = lines[0].lstrip("\t")
        text = "\n".join(lines) + "\n"
    with gzip.open(path, "wt") as stream:
        stream.write(text)
    return path


# ----------------------------------------------------------------------------------------------- readers


def test_read_10x_mtx_three_columns_keeps_gene_expression_and_unique_symbols(tmp_path):
    counts = _counts(4, 5)
    features = [["ENSG1", "CD3D", "Gene Expression"], ["ENSG2", "CD3D", "Gene Expression"],
                ["ENSG3", "MS4A1", "Gene Expression"], ["AB1", "CD3_TotalSeqB", "Antibody Capture"]]
    cells = [f"c{i}" for i in range(5)]
    adata = read_10x_mtx(write_mtx(tmp_path / "x", counts, features, cells))
    assert adata.shape == (5, 3)
    assert list(adata.var_names) == ["CD3D", "CD3D-1", "MS4A1"]
    assert list(adata.var["gene_id"]) == ["ENSG1", "ENSG2", "ENSG3"]
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X.toarray(), counts[:3].T)


def test_read_10x_mtx_legacy_genes_tsv_plain_files_and_tar_archive(tmp_path):
    counts = _counts(3, 4)
    folder = write_mtx(tmp_path / "legacy", counts, [["E1", "A"], ["E2", "B"], ["E3", "C"]], list("wxyz"), gz=False, legacy=True)
    adata = read_10x_mtx(folder)
    assert list(adata.var_names) == ["A", "B", "C"] and list(adata.obs_names) == list("wxyz")
    archive = tmp_path / "legacy.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="filtered_feature_bc_matrix")
    from_tar = read_10x_mtx(archive)
    np.testing.assert_array_equal(from_tar.X.toarray(), adata.X.toarray())


def test_read_10x_mtx_single_column_features_and_missing_files(tmp_path):
    folder = write_mtx(tmp_path / "one", _counts(3, 2), [["A"], ["B"], ["C"]], ["c1", "c2"])
    adata = read_10x_mtx(folder)
    assert list(adata.var["gene_id"]) == ["A", "B", "C"]
    (folder / "barcodes.tsv.gz").unlink()
    with pytest.raises(InputError, match="barcodes.tsv"):
        read_10x_mtx(folder)


def test_read_10x_h5_v3_keeps_gene_expression(tmp_path):
    counts = _counts(3, 4)
    path = write_10x_h5(
        tmp_path / "m.h5", counts, ["E1", "E2", "AB"], ["CD14", "LYZ", "CD14_ab"],
        ["Gene Expression", "Gene Expression", "Antibody Capture"], ["a-1", "b-1", "c-1", "d-1"],
    )
    adata = read_10x_h5(path)
    assert list(adata.var_names) == ["CD14", "LYZ"] and list(adata.var["gene_id"]) == ["E1", "E2"]
    np.testing.assert_array_equal(adata.X.toarray(), counts[:2].T)
    assert sp.isspmatrix_csr(adata.X)
    joined = read_singlecell([{"format": "10x_h5", "path": str(path), "batch": "run1"}], {})
    assert joined.shape == (4, 2) and set(joined.obs["batch"]) == {"run1"}
    with pytest.raises(InputError, match="10x HDF5"):
        read_10x_h5(write_tran(tmp_path / "not.h5", counts, ["a", "b", "c"], list("wxyz")))


def test_read_h5ad_counts_layer_precedence_and_integer_check(tmp_path):
    counts = _counts(4, 6).T.astype(np.float32)
    obs = pd.DataFrame({"tech": list("aaabbb")}, index=[f"c{i}" for i in range(6)])
    base = ad.AnnData(X=np.log1p(counts), obs=obs, var=pd.DataFrame(index=GENES[:4]))
    with_layers = base.copy()
    with_layers.layers["counts"] = sp.csr_matrix(counts)
    with_layers.layers["umi"] = sp.csr_matrix(counts * 2)
    with_layers.write_h5ad(tmp_path / "layers.h5ad")
    np.testing.assert_array_equal(read_h5ad_counts(tmp_path / "layers.h5ad").X.toarray(), counts)
    np.testing.assert_array_equal(read_h5ad_counts(tmp_path / "layers.h5ad", layer="umi").X.toarray(), counts * 2)
    with pytest.raises(InputError, match="layer 'spliced' not found"):
        read_h5ad_counts(tmp_path / "layers.h5ad", layer="spliced")

    with_raw = base.copy()
    with_raw.raw = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=GENES[:4]))
    with_raw.write_h5ad(tmp_path / "raw.h5ad")
    adata = read_h5ad_counts(tmp_path / "raw.h5ad")
    np.testing.assert_array_equal(adata.X.toarray(), counts)
    assert list(adata.obs["tech"]) == list("aaabbb")

    base.write_h5ad(tmp_path / "log.h5ad")  # only log values in X
    with pytest.raises(InputError, match=r"log\.h5ad \(X\).*non-integer"):
        read_h5ad_counts(tmp_path / "log.h5ad")


@pytest.mark.parametrize("r_style", [False, True])
def test_read_tran_tsv(tmp_path, r_style):
    counts = _counts(5, 3)
    path = write_tran(tmp_path / "b1_exprs.txt.gz", counts, GENES[:5], ["x1", "x2", "x3"], r_style=r_style)
    adata = read_tran_tsv(path)
    assert list(adata.var_names) == GENES[:5] and list(adata.obs_names) == ["x1", "x2", "x3"]
    np.testing.assert_array_equal(adata.X.toarray(), counts.T)


def test_read_cell_metadata_csv_tsv_and_first_column(tmp_path):
    (tmp_path / "m.csv").write_text("barcode,tech\nc1,a\nc2,b\n")
    (tmp_path / "m.txt").write_text("\tCellType\nc1\tB cell\nc2\tT cell\n")
    assert read_cell_metadata(tmp_path / "m.csv", "barcode").loc["c2", "tech"] == "b"
    assert read_cell_metadata(tmp_path / "m.txt", "").loc["c1", "CellType"] == "B cell"
    with pytest.raises(InputError, match=r"'cell' not found; columns are \['barcode', 'tech'\]"):
        read_cell_metadata(tmp_path / "m.csv", "cell")


# ----------------------------------------------------------------------------------------------- read_singlecell


def _two_tran_sources(tmp_path, genes2=None):
    paths = []
    for b, genes in ((1, GENES), (2, genes2 or GENES)):
        cells = [f"cell{i}" for i in range(4)]  # the same ids in both batches, as 10x barcodes often are
        write_tran(tmp_path / f"b{b}.txt.gz", _counts(len(genes), 4, seed=b), genes, cells)
        (tmp_path / f"b{b}_meta.tsv").write_text("cell\tCellType\n" + "".join(f"{c}\tT{b}\n" for c in cells))
        paths.append(tmp_path / f"b{b}.txt.gz")
    return [
        {"format": "tran_tsv", "path": str(p), "batch": f"batch{b}", "cell_metadata": str(tmp_path / f"b{b}_meta.tsv"),
         "cell_column": "cell", "layer": ""}
        for b, p in enumerate(paths, start=1)
    ]


def test_read_singlecell_joins_sources_with_fixed_batches(tmp_path):
    adata = read_singlecell(_two_tran_sources(tmp_path), {"cell_type": "CellType", "condition": ""})
    assert adata.shape == (8, len(GENES))
    assert list(adata.obs.columns) == ["batch", "cell_type"]
    assert adata.obs["batch"].value_counts().to_dict() == {"batch1": 4, "batch2": 4}
    assert isinstance(adata.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert adata.obs_names.is_unique and adata.obs_names[0] == "cell0-1"
    assert sp.isspmatrix_csr(adata.X) and (adata.layers["counts"] != adata.X).nnz == 0
    assert adata.uns["deepexpr"]["simulated"] is False


def test_gene_sets_that_differ_between_batches(tmp_path):
    sources = _two_tran_sources(tmp_path, genes2=GENES[:6] + ["X1"])
    with pytest.raises(InputError) as error:
        read_singlecell(sources, {"cell_type": "CellType"})
    message = str(error.value)
    assert "gene sets differ between batches" in message and "b1.txt.gz" in message and "b2.txt.gz" in message
    assert "2 genes only in" in message and "1 only in" in message
    inner = read_singlecell(sources, {"cell_type": "CellType"}, gene_join="inner")
    assert list(inner.var_names) == GENES[:6]


def test_metadata_cells_must_match_the_matrix(tmp_path):
    sources = _two_tran_sources(tmp_path)
    Path(sources[1]["cell_metadata"]).write_text("cell\tCellType\ncell0\tT\ncell1\tT\ncell2\tT\nghost\tT\n")
    with pytest.raises(InputError) as error:
        read_singlecell(sources, {"cell_type": "CellType"})
    message = str(error.value)
    assert "b2_meta.tsv" in message and "'ghost'" in message and "'cell3'" in message


def test_missing_obs_column_and_missing_batch(tmp_path):
    sources = _two_tran_sources(tmp_path)
    with pytest.raises(InputError, match=r"column 'celltype' \(obs_columns.cell_type\) not found; columns are \['CellType'\]"):
        read_singlecell(sources, {"cell_type": "celltype"})
    for source in sources:
        source["batch"] = ""
    with pytest.raises(InputError, match="no batch"):
        read_singlecell(sources, {"cell_type": "CellType"})


@pytest.mark.parametrize(("value", "words"), [(-1, "1 negative values"), (1.5, "1 non-integer values"), (np.nan, "missing value")])
def test_bad_count_values_are_rejected(tmp_path, value, words):
    counts = _counts(3, 3).astype(float)
    counts[1, 2] = value
    path = write_tran(tmp_path / "bad.txt.gz", counts, GENES[:3], ["a", "b", "c"])
    with pytest.raises(InputError, match=words) as error:
        read_singlecell([{"format": "tran_tsv", "path": str(path), "batch": "b1"}], {})
    assert "bad.txt.gz" in str(error.value)
    adata = ad.AnnData(X=counts.T.astype(np.float32), var=pd.DataFrame(index=GENES[:3]))
    adata.write_h5ad(tmp_path / "bad.h5ad")
    kind = {"missing value": "1 non-finite"}.get(words, words)
    with pytest.raises(InputError, match=rf"bad\.h5ad \(X\): counts: {kind}"):
        read_singlecell([{"format": "h5ad", "path": str(tmp_path / "bad.h5ad"), "batch": "b1"}], {})


# ----------------------------------------------------------------------------------------------- validation


def _tiny(batches: list[str], n_genes: int = 30) -> ad.AnnData:
    counts = np.random.default_rng(1).poisson(3.0, size=(len(batches), n_genes)).astype(np.float32)
    obs = pd.DataFrame({"batch": batches}, index=[f"c{i}" for i in range(len(batches))])
    return ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def test_validate_missing_batch_column_names_the_columns_present():
    adata = _tiny(["a"] * 30 + ["b"] * 30)
    adata.obs = adata.obs.rename(columns={"batch": "tech"})
    with pytest.raises(InputError, match=r"raw.h5ad: missing batch column 'batch'; obs columns are \['tech'\]"):
        validate_singlecell(adata, "raw.h5ad")


def test_validate_single_batch():
    with pytest.raises(InputError, match="at least 2 batches are needed.*only 'a'"):
        validate_singlecell(_tiny(["a"] * 40), "raw.h5ad")


def test_validate_batch_below_the_minimum():
    with pytest.raises(InputError, match=r"batch 'b' has 5 cells; the minimum is 20 \(min_cells_per_batch\)"):
        validate_singlecell(_tiny(["a"] * 30 + ["b"] * 5), "raw.h5ad", min_cells_per_batch=20)


def test_validate_non_finite_values_says_how_many_and_where():
    adata = _tiny(["a"] * 25 + ["b"] * 25)
    adata.X = adata.X.toarray()
    adata.X[3, 4] = np.nan
    adata.X[7, 4] = np.inf
    with pytest.raises(InputError, match=r"2 non-finite values .* in 2 cells and 1 genes, e.g. cell 'c3', gene 'g4'"):
        validate_singlecell(adata, "raw.h5ad")


def test_batch_below_the_minimum_after_qc_and_nothing_written(tmp_path):
    adata = _tiny(["a"] * 30 + ["b"] * 30, n_genes=300)
    sparse_cells = np.flatnonzero(adata.obs["batch"] == "b")[:15]
    dense = adata.X.toarray()
    dense[sparse_cells, 50:] = 0  # these cells detect < 200 genes and fail QC
    adata.X = sp.csr_matrix(dense)
    with pytest.raises(InputError, match="after QC: batch 'b' has 15 cells; the minimum is 20"):
        prepare_singlecell(adata, {"n_top_genes": 50}, "tiny", 0, "raw.h5ad")


def test_unknown_setting_and_defaults_match_the_schema(repo_root):
    with pytest.raises(InputError, match="normalize.n_hvg"):
        prepare_singlecell(_tiny(["a"] * 30 + ["b"] * 30), {"n_hvg": 10}, "tiny", 0, "raw.h5ad")
    schema = yaml.safe_load((repo_root / "config" / "schema.yaml").read_text())
    properties = schema["$defs"]["singlecell_normalize"]["properties"]
    assert {k: v["default"] for k, v in properties.items()} == NORMALIZE_DEFAULTS


# ----------------------------------------------------------------------------------------------- prepare


@pytest.fixture(scope="module")
def simulated():
    raw, truth = simulate_singlecell({"n_genes": 400, "batch_cells": [150, 200, 250]}, seed=2)
    return raw, truth


def test_prepare_follows_the_prepared_contract(simulated):
    raw, _ = simulated
    prepared = prepare_singlecell(raw, {"n_top_genes": 100, "min_genes": 50}, "sim", 7, "raw.h5ad")
    assert prepared.n_vars == 100
    assert sp.isspmatrix_csr(prepared.X) and prepared.X.dtype == np.float32
    counts = prepared.layers["counts"]
    assert sp.isspmatrix_csr(counts) and np.all(counts.data == np.round(counts.data))
    expected_var = {"highly_variable", "highly_variable_rank", "means", "variances", "variances_norm", "highly_variable_nbatches"}
    assert expected_var <= set(prepared.var.columns) and prepared.var["highly_variable"].all()
    assert {"batch", "cell_type", "n_counts", "n_genes"} <= set(prepared.obs.columns)
    # X = log1p(normalize_total) over ALL genes, then the HVG subset.
    expected = np.log1p(counts.toarray() / prepared.obs["n_counts"].to_numpy()[:, None] * 1e4)
    np.testing.assert_allclose(prepared.X.toarray(), expected, rtol=1e-5, atol=1e-5)
    info = prepared.uns["deepexpr"]
    assert info["dataset"] == "sim" and info["seed"] == 7 and info["simulated"] is True
    assert info["normalize"]["n_cells_in"] == 600 and info["normalize"]["n_genes_out"] == 100
    assert info["normalize"]["settings"]["n_top_genes"] == 100


def test_n_top_genes_is_capped_by_the_genes_left(simulated):
    raw, _ = simulated
    prepared = prepare_singlecell(raw, {"n_top_genes": 5000, "min_genes": 50}, "sim", 0, "raw.h5ad")
    assert prepared.n_vars == prepared.uns["deepexpr"]["normalize"]["n_genes_after_qc"]


def test_max_cells_subsample_is_seeded_and_stratified(simulated):
    raw, _ = simulated
    first = stratified_subsample(raw.obs["batch"], 300, seed=1)
    np.testing.assert_array_equal(first, stratified_subsample(raw.obs["batch"], 300, seed=1))
    assert not np.array_equal(first, stratified_subsample(raw.obs["batch"], 300, seed=2))
    assert raw.obs["batch"].iloc[first].value_counts().to_dict() == {"batch1": 75, "batch2": 100, "batch3": 125}
    prepared = prepare_singlecell(raw, {"n_top_genes": 50, "min_genes": 50, "max_cells": 300}, "sim", 1, "raw.h5ad")
    assert prepared.n_obs == 300


def test_max_pct_mito_drops_cells_with_mitochondrial_reads(simulated):
    raw, _ = simulated
    adata = raw.copy()
    adata.var_names = ["MT-CO1", "mt-nd1"] + list(adata.var_names[2:])
    dense = adata.X.toarray()
    dense[:10, 0] = dense[:10].sum(1)  # 10 cells with >= 50 % mitochondrial counts
    adata.X = sp.csr_matrix(dense)
    adata.layers["counts"] = adata.X
    prepared = prepare_singlecell(adata, {"n_top_genes": 50, "min_genes": 50, "max_pct_mito": 20}, "sim", 0, "raw.h5ad")
    assert prepared.n_obs == 590 and not set(adata.obs_names[:10]) & set(prepared.obs_names)


def test_marker_labelling_recovers_simulated_cell_types():
    types = ["Tc", "Bc", "Mono"]
    raw, truth = simulate_singlecell(
        {"n_genes": 500, "cell_types": types, "cell_type_prob": [0.5, 0.3, 0.2], "batch_cells": [200, 200],
         "de_fac_loc": 1.5, "de_down_prob": 0.0},
        seed=4,
    )
    factors = truth.var[[f"de_factor_{t}" for t in types]]
    rows = []
    for t in types:
        specific = (factors[f"de_factor_{t}"] > 3) & (factors.drop(columns=f"de_factor_{t}") == 1).all(axis=1)
        strongest = (truth.var["base_mean"] * factors[f"de_factor_{t}"])[specific].nlargest(3).index
        rows += [{"cell_type": t, "gene": g} for g in strongest]
    rows.append({"cell_type": "Tc", "gene": "NOT_IN_DATA"})
    markers = pd.DataFrame(rows)
    prepared = prepare_singlecell(
        raw, {"n_top_genes": 200, "min_genes": 50, "label_cells": "markers", "leiden_resolution": 0.5}, "sim", 0, "raw.h5ad", markers
    )
    accuracy = (prepared.obs["cell_type"].astype(str) == raw.obs.loc[prepared.obs_names, "cell_type"].astype(str)).mean()
    assert accuracy > 0.95
    assert "cluster" in prepared.obs.columns
    labels = prepared.uns["deepexpr"]["cell_labels"]
    table = cell_label_table(labels)
    assert list(table.columns[:3]) == ["cluster", "n_cells", "label"] and set(types) <= set(table.columns)
    assert table["n_cells"].sum() == prepared.n_obs
    assert list(labels["markers_skipped"]) == ["NOT_IN_DATA"]


def test_marker_labelling_needs_markers_in_the_data(simulated):
    raw, _ = simulated
    markers = pd.DataFrame({"cell_type": ["T"], "gene": ["CD3D"]})
    with pytest.raises(InputError, match="none of the 1 marker genes"):
        prepare_singlecell(raw, {"n_top_genes": 50, "min_genes": 50, "label_cells": "markers"}, "sim", 0, "raw.h5ad", markers)


def test_marker_file_is_a_plain_table_with_sources(repo_root):
    markers = read_table(repo_root / "resources" / "markers" / "pbmc_markers.tsv")
    assert list(markers.columns) == ["cell_type", "gene", "source"]
    assert {"T cells", "B cells", "NK cells", "CD14 monocytes"} <= set(markers["cell_type"])
    assert (markers["source"].str.len() > 10).all() and not markers.duplicated(["cell_type", "gene"]).any()


# ----------------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def pbmc_raw(shared_data):
    folder = shared_data / "pbmc_3batch_savercat"
    source = {"format": "10x_mtx", "path": str(folder), "cell_metadata": str(folder / "cell_metadata.tsv"), "cell_column": "cell"}
    return read_singlecell([source], {"batch": "tech", "cell_type": "celltype"})


@pytest.mark.shared_data
def test_real_pbmc_three_batches(pbmc_raw):
    assert pbmc_raw.shape == (2000, 10000)
    assert pbmc_raw.obs["batch"].value_counts().to_dict() == {"V3": 865, "V2": 588, "VDJ": 547}
    assert set(pbmc_raw.obs["cell_type"]) == {"T/NK cells", "Monocytes", "B cells"}
    prepared = prepare_singlecell(pbmc_raw, {"n_top_genes": 2000}, "pbmc", 0, "pbmc_3batch_savercat")
    assert prepared.n_vars == 2000 and prepared.n_obs > 1800
    assert prepared.var["highly_variable_nbatches"].max() == 3
    assert set(prepared.obs["batch"]) == {"V2", "V3", "VDJ"}


@pytest.mark.shared_data
def test_real_covid_cells_labelled_by_markers(shared_data, repo_root):
    folder = shared_data / "covid_combat_scdapp"
    source = {"format": "10x_mtx", "path": str(folder), "cell_metadata": str(folder / "cell_metadata.tsv")}
    raw = read_singlecell([source], {"batch": "donor", "donor": "donor", "condition": "condition", "cell_type": ""})
    assert raw.shape == (4591, 25456) and raw.obs["donor"].nunique() == 6
    markers = read_table(repo_root / "resources" / "markers" / "pbmc_markers.tsv")
    prepared = prepare_singlecell(raw, {"label_cells": "markers"}, "covid", 0, "covid_combat_scdapp", markers)
    labels = set(prepared.obs["cell_type"])
    assert {"T cells", "B cells", "NK cells", "CD14 monocytes"} <= labels
    table = cell_label_table(prepared.uns["deepexpr"]["cell_labels"])
    assert (table.groupby("label")["n_cells"].sum().drop("unassigned", errors="ignore") > 0).all()
