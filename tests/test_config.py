"""Config schema: defaults, and errors that name the offending key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from deepexpr.config import WORKFLOW_KEYS, load_schema, model_settings, validate_config
from deepexpr.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "config" / "schema.yaml")


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merged(base: dict, override: dict) -> dict:
    """Deep merge like Snakemake's --configfile on top of the Snakefile's configfile."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a shipped config must not rely on that."""


def _unique_mapping(loader, node, deep=False):
    keys = [key.value for key, _ in node.value]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{node.start_mark}: key(s) {repeated} given twice")
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


@pytest.mark.parametrize("name", ["config.yaml", "offline.yaml", "paper.yaml", "schema.yaml"])
def test_shipped_yaml_has_no_repeated_keys(name):
    yaml.load((REPO / "config" / name).read_text(), _UniqueKeyLoader)


@pytest.mark.parametrize("extra", [None, "offline.yaml", "paper.yaml"])
def test_shipped_configs_validate(extra):
    config = default_config()
    if extra:
        config = merged(config, yaml.safe_load((REPO / "config" / extra).read_text()))
    validate_config(config, SCHEMA)
    for dataset in config["datasets"].values():
        if dataset["kind"] == "bulk":
            assert dataset["nbvae"]["modes"], "defaults filled in nested objects"
            assert "permutations" in dataset["enrich"]
        elif dataset["kind"] == "archs4":
            assert dataset["generain"]["modes"] and "min_total_counts" in dataset["generain"]["qc"]
            assert "baseline_samples" in dataset["attributes"]
        else:
            assert dataset["genex"]["modes"] and "n_top_genes" in dataset["normalize"]


# Blocks of stochastic methods: each runs once per seed listed in its block.
SEEDED_BLOCKS = ("nbvae", "genex", "scvi", "sivae", "scimta", "generain")


@pytest.mark.parametrize("extra", ["offline.yaml", "paper.yaml"])
def test_stochastic_methods_run_three_seeds_on_real_and_paper_configs(extra):
    """Tables report mean and sd over seeds; fewer than three cannot carry a spread (issue 21)."""
    config = merged(default_config(), yaml.safe_load((REPO / "config" / extra).read_text()))
    validate_config(config, SCHEMA)
    for name in config["run"]:
        dataset = config["datasets"][name]
        for block in SEEDED_BLOCKS:
            if block in dataset and "seeds" in dataset[block]:
                assert len(dataset[block]["seeds"]) >= 3, f"{extra}: datasets.{name}.{block}.seeds"


# Optional blocks whose presence is the setting (absent by default, said in their description).
PRESENCE_KEYS = {
    "$defs.bulk_dataset.simulate",
    "$defs.bulk_dataset.counts",
    "$defs.bulk_dataset.gene_info",
    "$defs.singlecell_dataset.simulate",
    "$defs.singlecell_dataset.pseudobulk",
    "$defs.singlecell_dataset.scimta",
    "$defs.singlecell_source.cell_metadata",
    "$defs.archs4_dataset.simulate",
    "$defs.archs4_dataset.from_tables",
    "$defs.archs4_dataset.counts",
    "$defs.simulate_singlecell.modules",
    "$defs.singlecell_dataset.sivae",
}


def test_every_schema_property_has_default_and_description():
    def walk(node, where):
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{where}.{name} has no description"
            required = node.get("required", [])
            if name not in required and f"{where}.{name}" not in PRESENCE_KEYS:
                assert "default" in sub, f"{where}.{name} has no default"
            if f"{where}.{name}" in PRESENCE_KEYS:
                assert "absent" in sub["description"].lower(), f"{where}.{name}: say what absence means"
            walk(sub, f"{where}.{name}")
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"$defs.{name}")

    walk(SCHEMA, "config")


def test_typo_names_the_key_and_suggests():
    config = default_config()
    config["datasets"]["sim_bulk"]["nbvae"]["max_epoch"] = 10
    with pytest.raises(InputError, match=r"datasets\.sim_bulk\.nbvae.*'max_epoch'.*did you mean 'max_epochs'"):
        validate_config(config, SCHEMA)


def test_top_level_typo():
    config = default_config()
    config["sed"] = 1
    with pytest.raises(InputError, match=r"unknown key 'sed' \(did you mean 'seed'\?\)"):
        validate_config(config, SCHEMA)


def test_wrong_type_names_the_key():
    config = default_config()
    config["datasets"]["sim_bulk"]["simulate"]["n_genes"] = "many"
    with pytest.raises(InputError, match=r"datasets\.sim_bulk\.simulate\.n_genes: expected integer"):
        validate_config(config, SCHEMA)


def test_bad_enum_names_the_key():
    config = default_config()
    config["device"] = "tpu"
    with pytest.raises(InputError, match=r"key device: 'tpu' is not one of"):
        validate_config(config, SCHEMA)


def test_run_must_name_a_dataset():
    config = default_config()
    config["run"] = ["nope"]
    with pytest.raises(InputError, match=r"key run: dataset 'nope' is not in datasets"):
        validate_config(config, SCHEMA)


def test_contrast_factor_must_be_a_design_column():
    config = default_config()
    config["datasets"]["sim_bulk"]["contrasts"]["luminal_vs_basal"]["factor"] = "tissue"
    with pytest.raises(InputError, match=r"contrasts\.luminal_vs_basal: column 'tissue' is not a design column"):
        validate_config(config, SCHEMA)


def test_real_dataset_needs_counts():
    config = default_config()
    del config["datasets"]["gse60450"]["counts"]
    with pytest.raises(InputError, match=r"datasets\.gse60450\.counts: required"):
        validate_config(config, SCHEMA)


def test_bad_checksum_format_rejected():
    config = default_config()
    config["datasets"]["gse60450"]["counts"]["sha256"] = "abc"
    with pytest.raises(InputError, match=r"datasets\.gse60450\.counts\.sha256"):
        validate_config(config, SCHEMA)


def test_singlecell_typo_names_the_key():
    config = default_config()
    config["datasets"]["sim_pbmc"]["genex"]["max_epoch"] = 3
    with pytest.raises(InputError, match=r"datasets\.sim_pbmc\.genex.*'max_epoch'.*did you mean 'max_epochs'"):
        validate_config(config, SCHEMA)


def test_real_singlecell_dataset_needs_sources():
    config = default_config()
    config["datasets"]["pbmc"]["sources"] = []
    with pytest.raises(InputError, match=r"datasets\.pbmc\.sources: at least one source"):
        validate_config(config, SCHEMA)


def test_simulated_cell_type_probabilities_must_match():
    config = default_config()
    config["datasets"]["sim_pbmc"]["simulate"]["cell_type_prob"] = [0.5, 0.5]
    with pytest.raises(InputError, match=r"sim_pbmc\.simulate\.cell_type_prob: 2 probabilities for 6 cell_types"):
        validate_config(config, SCHEMA)


def test_bad_method_name_names_the_key():
    config = default_config()
    config["datasets"]["sim_pbmc"]["methods"] = ["unintegrated", "mnn"]
    with pytest.raises(InputError, match=r"key datasets\.sim_pbmc\.methods\.1: 'mnn' is not one of"):
        validate_config(config, SCHEMA)


def test_methods_come_from_the_registry():
    from deepexpr.registry import INTEGRATION_METHODS

    methods = SCHEMA["$defs"]["singlecell_dataset"]["properties"]["methods"]
    assert methods["items"]["enum"] == list(INTEGRATION_METHODS)
    assert methods["default"] == list(INTEGRATION_METHODS)
    raw = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    raw_methods = raw["$defs"]["singlecell_dataset"]["properties"]["methods"]
    assert "enum" not in raw_methods["items"], "schema.yaml must not list the methods itself"


def test_genex_block_has_every_model_setting():
    from deepexpr.models.genex.settings import EXTRA_SETTINGS, MODE_DEFAULTS

    block = SCHEMA["$defs"]["genex"]["properties"]
    settings = set(block) - set(WORKFLOW_KEYS)
    assert settings == set(MODE_DEFAULTS["corrected"]) | set(EXTRA_SETTINGS)
    for name in settings:
        assert block[name]["default"] is None, f"genex.{name}: default must be null (the mode's default)"
    for mode in MODE_DEFAULTS.values():  # every mode's default is an allowed value
        for name, value in mode.items():
            config = default_config()
            config["datasets"]["sim_pbmc"]["genex"][name] = list(value) if isinstance(value, tuple) else value
            validate_config(config, SCHEMA)


def test_nbvae_block_has_every_model_setting():
    from deepexpr.models.nbvae.settings import MODE_DEFAULTS

    block = SCHEMA["$defs"]["nbvae"]["properties"]
    assert "learning_rate" not in block
    assert set(MODE_DEFAULTS["corrected"]) == set(block) - set(WORKFLOW_KEYS)
    assert "deseq2" in block["dispersion"]["enum"]
    for mode in MODE_DEFAULTS.values():
        for name, value in mode.items():
            config = default_config()
            config["datasets"]["sim_bulk"]["nbvae"][name] = value
            validate_config(config, SCHEMA)


def test_model_settings_drop_only_the_workflow_keys():
    config = default_config()
    validate_config(config, SCHEMA)
    genex = config["datasets"]["sim_pbmc"]["genex"]
    settings = model_settings(genex)
    assert not set(settings) & set(WORKFLOW_KEYS)
    assert set(settings) | {"modes", "seeds", "checkpoint_every"} == set(genex)
    assert settings["max_epochs"] == 60 and settings["lr"] is None
    nbvae = model_settings(config["datasets"]["sim_bulk"]["nbvae"])
    assert {"lr", "max_epochs", "dispersion", "latent_dim"} <= set(nbvae)
    assert not {"n_posterior_samples", "delta", "fdr_target", "seeds", "modes"} & set(nbvae)
