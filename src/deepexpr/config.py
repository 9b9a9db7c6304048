"""Configuration: JSON-schema validation with defaults and messages that name the key.

The workflow calls :func:`validate_config` at parse time, so a typo or a wrong type stops
the run before any job starts.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import jsonschema
import yaml
from jsonschema import Draft202012Validator, validators

from .errors import InputError

URL_SCHEMES = ("http://", "https://", "ftp://")
#: Keys of a model's config block (``nbvae``, ``genex``) that the workflow uses and the model does
#: not: which runs to make and how to use them. Everything else in the block is a model setting.
WORKFLOW_KEYS = ("modes", "seeds", "checkpoint_every", "n_posterior_samples", "delta", "fdr_target", "posterior_predictive")


def _with_defaults(validator_class):
    """Validator that fills in schema defaults while it validates (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, _copy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _copy(value):
    # Defaults are shared by every instance of the schema; never hand out the same list or dict.
    return yaml.safe_load(yaml.safe_dump(value))


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError, schema: dict) -> str:
    """One readable sentence for a schema violation, naming the key."""
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in unexpected:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return f"config key {where}: unknown key {', '.join(hints)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "type":
        return (
            f"config key {where}: expected {error.validator_value}, "
            f"got {type(error.instance).__name__} {error.instance!r}"
        )
    if error.validator == "enum":
        return f"config key {where}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "required":
        return f"config key {where}: {error.message}"
    return f"config key {where}: {error.message}"


def load_schema(path: str | Path) -> dict:
    """The config schema, with the allowed and default ``datasets.<d>.methods`` filled in from
    :data:`deepexpr.registry.INTEGRATION_METHODS` (the list is written only there)."""
    from deepexpr.registry import INTEGRATION_METHODS

    schema = yaml.safe_load(Path(path).read_text())
    methods = schema["$defs"]["singlecell_dataset"]["properties"]["methods"]
    methods["items"]["enum"] = list(INTEGRATION_METHODS)
    methods["default"] = list(INTEGRATION_METHODS)
    return schema


def model_settings(block: dict) -> dict:
    """The model settings of a model's config block: the block without :data:`WORKFLOW_KEYS`
    (None = the mode's default), as passed to ``NBVAE(...)`` or ``GENEX(...)``."""
    return {key: value for key, value in block.items() if key not in WORKFLOW_KEYS}


def validate_config(config: dict, schema: dict) -> dict:
    """Validate ``config`` in place (filling defaults) and run the cross-field checks.

    Raises :class:`InputError` naming the first offending key.
    """
    validator_class = _with_defaults(Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise InputError("config", _describe(errors[0], schema).removeprefix("config "))
    _check_cross_fields(config)
    return config


def _check_cross_fields(config: dict) -> None:
    datasets = config["datasets"]
    for name in config["run"]:
        if name not in datasets:
            raise InputError(
                "config", f"key run: dataset '{name}' is not in datasets ({', '.join(sorted(datasets))})"
            )
    for name, dataset in datasets.items():
        key = f"datasets.{name}"
        if dataset["kind"] == "singlecell":
            _check_singlecell(dataset, key)
            continue
        if dataset["kind"] == "archs4":
            _check_archs4(dataset, key)
            continue
        if "simulate" not in dataset:
            for needed in ("counts", "sample_sheet"):
                if not dataset.get(needed):
                    raise InputError(
                        "config", f"key {key}.{needed}: required when the dataset is not simulated"
                    )
        for contrast_name, contrast in dataset["contrasts"].items():
            ckey = f"{key}.contrasts.{contrast_name}"
            columns = set(dataset["design_columns"])
            terms = design_terms(contrast["design"])
            for column in [contrast["factor"], *terms, *contrast["subset"]]:
                if column not in columns:
                    raise InputError(
                        "config",
                        f"key {ckey}: column '{column}' is not a design column "
                        f"(design_columns: {', '.join(sorted(columns))})",
                    )
            if contrast["factor"] not in terms:
                raise InputError(
                    "config", f"key {ckey}: factor '{contrast['factor']}' must be a term of the design {contrast['design']!r}"
                )
            if contrast["test"] == contrast["reference"]:
                raise InputError("config", f"key {ckey}: test and reference are both '{contrast['test']}'")


def _check_singlecell(dataset: dict, key: str) -> None:
    simulated = "simulate" in dataset
    if not simulated and not dataset["sources"]:
        raise InputError("config", f"key {key}.sources: at least one source is required when the dataset is not simulated")
    if simulated:
        sim = dataset["simulate"]
        if len(sim["cell_types"]) != len(sim["cell_type_prob"]):
            raise InputError(
                "config",
                f"key {key}.simulate.cell_type_prob: {len(sim['cell_type_prob'])} probabilities for "
                f"{len(sim['cell_types'])} cell_types",
            )
        if sim["batches"] and len(sim["batches"]) != len(sim["batch_cells"]):
            raise InputError(
                "config", f"key {key}.simulate.batches: {len(sim['batches'])} names for {len(sim['batch_cells'])} batch_cells"
            )
    pseudobulk = dataset.get("pseudobulk")
    if pseudobulk and pseudobulk["test"] == pseudobulk["reference"]:
        raise InputError("config", f"key {key}.pseudobulk: test and reference are both '{pseudobulk['test']}'")
    if dataset["explain"]["baseline"] == "reference_batch_mean" and not dataset["explain"]["reference_level"]:
        raise InputError("config", f"key {key}.explain.reference_level: required with baseline reference_batch_mean")


def _check_archs4(dataset: dict, key: str) -> None:
    origins = [name for name in ("simulate", "from_tables", "counts") if name in dataset]
    if len(origins) != 1:
        raise InputError(
            "config", f"key {key}: exactly one of simulate, from_tables, counts is required (got {origins or 'none'})"
        )


def design_terms(design: str) -> list[str]:
    """Variables of a formula like ``"~cell_type + status"`` (``a:b``, ``a*b`` split)."""
    right = design.strip().removeprefix("~")
    terms = [t.strip() for t in re.split(r"[+*:]", right)]
    return [t for t in terms if t and t not in ("0", "1")]


def is_url(source: str) -> bool:
    return source.startswith(URL_SCHEMES)


def resolve_local(source: str, shared_data: str) -> str:
    """Local path of a file source, with ``{shared_data}`` expanded."""
    return source.replace("{shared_data}", shared_data)


def contrast_label(contrast: dict) -> str:
    return contrast.get("label") or f"{contrast['test']} vs {contrast['reference']}"
