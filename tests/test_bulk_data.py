"""Bulk readers: strict validation, sample matching, AnnData assembly, contrasts."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from deepexpr.data.bulk.read import (
    build_bulk_adata,
    design_terms,
    match_samples,
    median_of_ratios_size_factors,
    read_gene_info,
    read_genewise_counts,
    read_sample_sheet,
    validate_contrast,
)
from deepexpr.errors import InputError

COUNTS_TEXT = (
    "EntrezGeneID\tLength\tA-1\tB-1\tC-1\tD-1\n"
    "101\t1000\t1\t2\t4\t8\n"
    "102\t2000\t2\t8\t4\t4\n"
    "103\t500\t0\t0\t1\t0\n"
    "104\t800\t4\t4\t8\t2\n"
)
SHEET_TEXT = (
    "sample\tcount_column\tcell_type\tstatus\n"
    "A\tA-1\tbasal\tvirgin\n"
    "B\tB-1\tbasal\tlactate\n"
    "C\tC-1\tluminal\tvirgin\n"
    "D\tD-1\tluminal\tlactate\n"
)


def write(tmp_path, name, text):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def bulk_inputs(tmp_path):
    counts_path = write(tmp_path, "counts.txt.gz", COUNTS_TEXT)
    sheet_path = write(tmp_path, "samples.tsv", SHEET_TEXT)
    counts, lengths = read_genewise_counts(counts_path)
    sheet = read_sample_sheet(sheet_path, design_columns=["cell_type", "status"])
    return match_samples(counts, sheet, counts_path, sheet_path), sheet, lengths


def test_read_genewise_counts_gz_types_and_lengths(tmp_path):
    counts, lengths = read_genewise_counts(write(tmp_path, "c.txt.gz", COUNTS_TEXT))
    assert list(counts.columns) == ["A-1", "B-1", "C-1", "D-1"]
    assert list(counts.index) == ["101", "102", "103", "104"]
    assert (counts.dtypes == np.int64).all()
    assert counts.loc["102", "B-1"] == 8
    assert lengths.to_dict() == {"101": 1000, "102": 2000, "103": 500, "104": 800}


def test_read_genewise_counts_custom_gene_column_without_length(tmp_path):
    text = "gene_id\tS1\tS2\ng1\t3\t4\n"
    counts, lengths = read_genewise_counts(write(tmp_path, "c.tsv", text), gene_id_column="gene_id")
    assert counts.shape == (1, 2) and lengths is None


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("3.5", "non-integer"),
        ("-2", "negative"),
        ("", "missing or non-numeric"),
        ("abc", "missing or non-numeric"),
        ("NaN", "missing or non-numeric"),
    ],
)
def test_read_genewise_counts_rejects_bad_cells_naming_column_and_gene(tmp_path, cell, problem):
    text = COUNTS_TEXT.replace("102\t2000\t2\t8", f"102\t2000\t2\t{cell}")
    path = write(tmp_path, "c.tsv", text)
    with pytest.raises(InputError) as err:
        read_genewise_counts(path)
    message = str(err.value)
    assert str(path) in message and "'B-1'" in message and "'102'" in message and problem in message


def test_read_genewise_counts_rejects_missing_id_column_and_duplicates(tmp_path):
    with pytest.raises(InputError, match="gene id column 'GeneID' not found"):
        read_genewise_counts(write(tmp_path, "a.tsv", COUNTS_TEXT), gene_id_column="GeneID")
    duplicated = COUNTS_TEXT.replace("104\t", "101\t")
    with pytest.raises(InputError, match=r"duplicated gene ids, e\.g\. \['101'\]"):
        read_genewise_counts(write(tmp_path, "b.tsv", duplicated))


def test_read_genewise_counts_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_genewise_counts(tmp_path / "absent.tsv")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (SHEET_TEXT.replace("status", "state"), r"missing column\(s\) \['status'\]"),
        (SHEET_TEXT.replace("B\tB-1", "A\tB-1"), r"column 'sample' has duplicated values \['A'\]"),
        (SHEET_TEXT.replace("luminal\tlactate", "luminal\t"), r"column 'status' is empty on data row\(s\) \[4\]"),
    ],
)
def test_read_sample_sheet_errors(tmp_path, text, pattern):
    with pytest.raises(InputError, match=pattern):
        read_sample_sheet(write(tmp_path, "s.tsv", text), design_columns=["cell_type", "status"])


def test_match_samples_reorders_renames_and_reports_both_sides(tmp_path):
    counts, _ = read_genewise_counts(write(tmp_path, "c.tsv", COUNTS_TEXT))
    shuffled = SHEET_TEXT.splitlines()
    sheet = read_sample_sheet(write(tmp_path, "s.tsv", "\n".join([shuffled[0], *shuffled[:0:-1]]) + "\n"))
    matched = match_samples(counts, sheet, "c.tsv", "s.tsv")
    assert list(matched.columns) == ["D", "C", "B", "A"]
    assert matched.loc["102", "B"] == 8

    wrong = read_sample_sheet(write(tmp_path, "w.tsv", SHEET_TEXT.replace("D-1", "D-2")))
    with pytest.raises(InputError) as err:
        match_samples(counts, wrong, "c.tsv", "w.tsv")
    assert "in the matrix but not the sheet: ['D-1']" in str(err.value)
    assert "in the sheet but not the matrix: ['D-2']" in str(err.value)


def test_read_gene_info(tmp_path):
    text = "#tax_id\tGeneID\tSymbol\tdescription\n10090\t101\tXkr4\tx\n10090\t102\tRp1\ty\n"
    symbols = read_gene_info(write(tmp_path, "gi.gz", text))
    assert symbols.to_dict() == {"101": "Xkr4", "102": "Rp1"}
    with pytest.raises(InputError, match="#tax_id"):
        read_gene_info(write(tmp_path, "bad.tsv", "tax_id\tGeneID\tSymbol\n1\t2\t3\n"))


def test_median_of_ratios_by_hand():
    # genes (columns) with geometric means 2, 4, 4; a gene with a zero is ignored
    counts = np.array([[1, 2, 4, 0], [4, 8, 4, 9]])
    np.testing.assert_allclose(median_of_ratios_size_factors(counts), [0.5, 2.0])
    with pytest.raises(ValueError, match="every gene has a zero"):
        median_of_ratios_size_factors(np.array([[0, 1], [1, 0]]))


def test_build_bulk_adata_follows_contract(bulk_inputs):
    counts, sheet, lengths = bulk_inputs
    symbols = pd.Series({"101": "Xkr4", "104": "Sox17"})
    adata = build_bulk_adata(
        counts, sheet, ["cell_type", "status"], symbols, lengths, min_total_count=10, dataset="toy", source="c.tsv"
    )
    assert list(adata.obs_names) == ["A", "B", "C", "D"]
    assert list(adata.var_names) == ["101", "102", "104"]  # 103 has total 1 < 10
    assert list(adata.var["symbol"]) == ["Xkr4", "102", "Sox17"]
    assert list(adata.var["length"]) == [1000, 2000, 800]
    assert adata.layers["counts"].dtype == np.int64
    np.testing.assert_array_equal(adata.layers["counts"][:, 0], [1, 2, 4, 8])
    expected_sf = median_of_ratios_size_factors(counts.loc[["101", "102", "104"]].to_numpy().T)
    np.testing.assert_allclose(adata.obs["size_factor"], expected_sf)
    np.testing.assert_allclose(adata.X, np.log2(adata.layers["counts"] / expected_sf[:, None] + 1))
    assert list(adata.obs["status"].cat.categories) == ["lactate", "virgin"]
    assert adata.uns["deepexpr"]["n_genes_raw"] == 4 and adata.uns["deepexpr"]["min_total_count"] == 10


def test_build_bulk_adata_given_level_order(bulk_inputs):
    counts, sheet, _ = bulk_inputs
    adata = build_bulk_adata(counts, sheet, ["status"], design_levels={"status": ["virgin", "lactate"]})
    assert list(adata.obs["status"].cat.categories) == ["virgin", "lactate"]
    with pytest.raises(InputError, match=r"design_levels.status.*\['lactate'\]"):
        build_bulk_adata(counts, sheet, ["status"], design_levels={"status": ["virgin"]})


@pytest.fixture
def design_obs():
    return pd.DataFrame(
        {
            "cell_type": ["basal"] * 6 + ["luminal"] * 6,
            "status": ["virgin", "virgin", "pregnant", "pregnant", "lactate", "lactate"] * 2,
        },
        index=[f"S{i}" for i in range(12)],
    )


def contrast(**changes):
    spec = {
        "name": "c",
        "design": "~cell_type + status",
        "factor": "status",
        "test": "lactate",
        "reference": "virgin",
        "subset": {},
    }
    return {**spec, **changes}


def test_design_terms():
    assert design_terms("~ cell_type + status") == ["cell_type", "status"]
    assert design_terms("~a*b + 1") == ["a", "b"]


def test_validate_contrast_accepts_and_subsets(design_obs):
    assert len(validate_contrast(contrast(), design_obs)) == 12
    within = validate_contrast(contrast(design="~status", subset={"cell_type": "luminal"}), design_obs)
    assert list(within.index) == [f"S{i}" for i in range(6, 12)]


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"factor": "condition"}, r"factor names column\(s\) \['condition'\]"),
        ({"design": "~cell_type + batch"}, r"design names column\(s\) \['batch'\]"),
        ({"design": "~cell_type"}, "factor 'status' is not a term of design"),
        ({"test": "lactation"}, r"test level 'lactation'.*levels present are \['lactate', 'pregnant', 'virgin'\]"),
        ({"subset": {"cell_type": "stromal"}}, r"subset level 'stromal'.*\['basal', 'luminal'\]"),
        ({"subset": {"cell_type": "luminal"}}, "design term 'cell_type' has a single level"),
        ({"reference": "lactate"}, "same level"),
    ],
)
def test_validate_contrast_errors(design_obs, changes, pattern):
    with pytest.raises(InputError, match=pattern) as err:
        validate_contrast(contrast(**changes), design_obs, source="config.yaml")
    assert str(err.value).startswith("config.yaml: contrast 'c'")


def test_validate_contrast_needs_two_samples_per_group(design_obs):
    obs = design_obs.drop(index=["S4", "S10"])  # one lactate sample per cell type left
    with pytest.raises(InputError, match="has 1 sample"):
        validate_contrast(contrast(design="~status", subset={"cell_type": "luminal"}), obs)
    with pytest.raises(InputError, match=r"missing key\(s\) \['reference'\]"):
        validate_contrast({k: v for k, v in contrast().items() if k != "reference"}, design_obs)


@pytest.mark.shared_data
def test_gse60450_filter_and_size_factors(shared_data, repo_root):
    counts_path = shared_data / "gse60450" / "GSE60450_LactationGenewiseCounts.txt.gz"
    sheet_path = repo_root / "resources" / "gse60450_samples.tsv"
    counts, lengths = read_genewise_counts(counts_path)
    sheet = read_sample_sheet(sheet_path, design_columns=["cell_type", "status"])
    symbols = read_gene_info(shared_data / "annotation" / "Mus_musculus.gene_info.2021-07.gz")
    adata = build_bulk_adata(
        match_samples(counts, sheet, counts_path, sheet_path), sheet, ["cell_type", "status"], symbols, lengths
    )
    assert counts.shape == (27179, 12)
    assert adata.n_vars == 18418  # docs/models/nbvae.md: row sum >= 10
    size_factors = adata.obs["size_factor"]
    assert size_factors.idxmin() == "LE" and size_factors.idxmax() == "LB"
    assert round(size_factors.min(), 3) == 0.570 and round(size_factors.max(), 3) == 1.362
    assert adata.var.loc["497097", "symbol"] == "Xkr4"
