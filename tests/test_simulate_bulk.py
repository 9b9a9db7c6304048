"""Bulk simulator: shapes, determinism, truth consistency, files readable by the bulk readers."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from deepexpr.data.bulk.read import build_bulk_adata, match_samples, read_genewise_counts, read_sample_sheet
from deepexpr.data.bulk.simulate import simulate_bulk, write_simulation
from deepexpr.errors import InputError
from deepexpr.io import read_table

LFC_COLUMNS = ["lfc__cell_type__luminal", "lfc__status__pregnant", "lfc__status__lactate"]


@pytest.fixture(scope="module")
def simulation():
    return simulate_bulk(n_genes=1500, seed=7, preset="easy")


def test_shapes_and_layout(simulation):
    counts, samples, truth, gene_sets = simulation
    assert counts.shape == (1500, 13) and counts.columns[0] == "Length"
    assert list(counts.columns[1:]) == list(samples["count_column"])
    assert list(samples.columns) == ["sample", "count_column", "cell_type", "status"]
    assert list(samples["sample"][:3]) == ["S01", "S02", "S03"] and samples["count_column"][0] == "SIM-S01"
    assert samples.groupby(["cell_type", "status"]).size().eq(2).all() and len(samples) == 12
    assert list(truth.columns) == ["gene_id", "base_mean", "dispersion", *LFC_COLUMNS]
    assert list(truth["gene_id"]) == list(counts.index) and counts.index[0] == "g0001"
    # Counts are integers whose per-gene mean follows the truth's base mean (measured Spearman 0.98,
    # median ratio 1.05); NB draws are never negative, so ">= 0" could not fail.
    values = counts.drop(columns="Length").to_numpy()
    assert np.issubdtype(values.dtype, np.integer)
    mean = values.mean(axis=1)
    assert pd.Series(mean).corr(pd.Series(truth["base_mean"].to_numpy()), method="spearman") > 0.9
    assert 0.8 < np.median(mean / truth["base_mean"].to_numpy()) < 1.25
    assert {"MODULE_CELL_TYPE_LUMINAL_UP_1", "MODULE_STATUS_LACTATE_DOWN_2", "MODULE_NULL_6"} <= set(gene_sets)
    assert all(15 <= len(genes) <= 150 for genes in gene_sets.values())


def test_seed_reproducible_and_seed_sensitive(simulation):
    again = simulate_bulk(n_genes=1500, seed=7, preset="easy")
    other = simulate_bulk(n_genes=1500, seed=8, preset="easy")
    pd.testing.assert_frame_equal(simulation.counts, again.counts)
    pd.testing.assert_frame_equal(simulation.truth, again.truth)
    assert simulation.gene_sets == again.gene_sets
    assert not simulation.counts.equals(other.counts)


def test_truth_effects_in_range_and_exactly_zero_elsewhere(simulation):
    truth = simulation.truth
    for column, fraction in zip(LFC_COLUMNS, [0.15, 0.08, 0.08]):
        lfc = truth[column].to_numpy()
        de = lfc != 0
        assert de.sum() == round(fraction * 1500)
        assert ((np.abs(lfc[de]) >= 1.0) & (np.abs(lfc[de]) <= 3.0)).all()
        assert 0.3 < (lfc[de] > 0).mean() < 0.7  # random sign
    assert (truth["dispersion"] > 0).all() and (truth["base_mean"] > 0).all()


def test_counts_follow_the_planted_effects(simulation):
    counts, samples, truth, _ = simulation
    values = counts.drop(columns="Length")
    luminal = (samples["cell_type"] == "luminal").to_numpy()
    expressed = truth["base_mean"].to_numpy() > 50
    normalised = values / values.sum(axis=0) * 1e6
    observed = np.log2((normalised.loc[:, luminal].mean(axis=1) + 1) / (normalised.loc[:, ~luminal].mean(axis=1) + 1))
    true_lfc = truth["lfc__cell_type__luminal"].to_numpy()
    assert np.corrcoef(observed[expressed], true_lfc[expressed])[0, 1] > 0.8


def test_planted_modules_overlap_their_de_direction(simulation):
    truth = simulation.truth.set_index("gene_id")
    lactate = truth["lfc__status__lactate"]
    for name, genes in simulation.gene_sets.items():
        share_up = (lactate[genes] > 0).mean()
        if name.startswith("MODULE_STATUS_LACTATE_UP"):
            assert share_up >= 0.55
        if name.startswith("MODULE_NULL"):
            assert share_up < 0.2


def test_tiny_simulation_caps_module_sizes():
    tiny = simulate_bulk(n_genes=40, seed=1)
    assert all(len(genes) == len(set(genes)) <= 40 for genes in tiny.gene_sets.values())


def test_de_fraction_must_cover_every_factor():
    with pytest.raises(InputError, match=r"simulate.de_fraction.*\['batch'\]"):
        simulate_bulk(n_genes=100, design={"batch": ["a", "b"]}, de_fraction={"cell_type": 0.1})


def test_written_files_read_back_through_the_bulk_readers(tmp_path):
    simulation = simulate_bulk(
        n_genes=300,
        design={"condition": ["control", "treated"]},
        n_replicates=3,
        de_fraction={"condition": 0.2},
        seed=3,
    )
    paths = {name: tmp_path / "raw" / name for name in ("counts.tsv.gz", "samples.tsv", "genesets.gmt")}
    truth_path = tmp_path / "truth.tsv"
    write_simulation(simulation, paths["counts.tsv.gz"], paths["samples.tsv"], truth_path, paths["genesets.gmt"])

    counts, lengths = read_genewise_counts(paths["counts.tsv.gz"], gene_id_column="gene_id")
    sheet = read_sample_sheet(paths["samples.tsv"], design_columns=["condition"])
    matched = match_samples(counts, sheet, paths["counts.tsv.gz"], paths["samples.tsv"])
    adata = build_bulk_adata(matched, sheet, ["condition"], lengths=lengths, dataset="sim")
    assert adata.n_obs == 6 and adata.n_vars <= 300
    np.testing.assert_array_equal(
        adata.layers["counts"], simulation.counts.loc[adata.var_names].drop(columns="Length").to_numpy().T
    )
    pd.testing.assert_frame_equal(read_table(truth_path, dtype={"gene_id": str}), simulation.truth)

    gmt = [line.split("\t") for line in paths["genesets.gmt"].read_text().splitlines()]
    assert {row[0]: row[2:] for row in gmt} == simulation.gene_sets
    assert all(row[1].startswith(("planted module", "null module")) for row in gmt)
    assert not list(tmp_path.rglob("*.part"))


# ------------------------------------------------------------------ presets
def test_easy_preset_is_the_original_simulator_byte_for_byte():
    # sha256 of counts, truth and modules from the simulator before presets existed (commit be96793).
    # The truth's floats are written to 10 significant digits: numpy's vectorised exp/log differ in
    # the last bit between CPUs with and without AVX-512, and full-precision text would follow that.
    easy = simulate_bulk(n_genes=300, seed=3, preset="easy")
    digest = hashlib.sha256(
        easy.counts.to_csv().encode()
        + easy.truth.to_csv(float_format="%.10g").encode()
        + repr(sorted(easy.gene_sets.items())).encode()
    ).hexdigest()
    assert digest == "0205773cae0a2a52c8011f844c1deaab2dbffcd74790d024fa03361f2e4c4910"


@pytest.fixture(scope="module")
def realistic():
    return simulate_bulk(n_genes=1500, seed=7, preset="realistic")


def test_realistic_effects_are_continuous_and_mostly_small(realistic):
    truth = realistic.truth
    for column, fraction in zip(LFC_COLUMNS, [0.15, 0.08, 0.08]):
        lfc = truth[column].to_numpy()
        de = lfc != 0
        assert de.sum() == round(fraction * 1500)
        # Exponential |LFC| with mean 0.8: measured 46-51 % of true effects below 0.5, 6-11 % above 2.
        assert (np.abs(lfc[de]) < 0.5).mean() > 0.3 and (np.abs(lfc[de]) > 2).any()
        assert (np.abs(lfc[de]) <= 3.0).all()


def test_realistic_adds_dispersion_spread_low_counts_and_an_outlier_sample(realistic, simulation):
    truth, easy_truth = realistic.truth, simulation.truth
    # Dispersion scatter around the same trend: log-sd 1.0 against easy's 0.5.
    def scatter(table):
        trend = 0.05 + 2.0 / table["base_mean"]
        return np.log(table["dispersion"] / trend).std()

    assert scatter(truth) > 1.6 * scatter(easy_truth)
    # 15 % of genes moved to base means 0.5-10 (measured 21 % below 10 against easy's 7 %).
    assert (truth["base_mean"] < 10).mean() > (easy_truth["base_mean"] < 10).mean() + 0.1
    outlier_columns = [c for c in truth.columns if c.startswith("outlier_log2_effect__")]
    assert len(outlier_columns) == 1
    sample = outlier_columns[0].split("__")[1]
    shift = truth[outlier_columns[0]].to_numpy()
    assert (shift != 0).sum() == 75
    # In the outlier sample the shifted genes deviate from their replicate partner by about the shift.
    samples = realistic.samples.set_index("sample")
    partner = samples.index[
        (samples["cell_type"] == samples.loc[sample, "cell_type"])
        & (samples["status"] == samples.loc[sample, "status"])
        & (samples.index != sample)
    ][0]
    counts = realistic.counts
    ratio = np.log2(counts[samples.loc[sample, "count_column"]] + 1) - np.log2(counts[samples.loc[partner, "count_column"]] + 1)
    big = (np.abs(shift) > 2) & (truth["base_mean"].to_numpy() > 50)
    assert np.corrcoef(ratio[big], shift[big])[0, 1] > 0.8


def test_unknown_preset_is_rejected():
    with pytest.raises(InputError, match=r"simulate.preset.*'hard'"):
        simulate_bulk(n_genes=100, preset="hard")
