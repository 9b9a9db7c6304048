"""The batch-correction methods run side by side, in one table read by everything that lists them.

The rules (which runs a dataset has, which rule makes each), the config schema (the allowed names of
``datasets.<d>.methods``), the baselines' dispatch, the scoring and the figures (label, colour,
order) all read :data:`INTEGRATION_METHODS`, so a new method is added here once.

A run is one output ``results/{dataset}/integration/{run}.h5ad``. A method without modes has one run
named after it; a trained model with modes and seeds (GENEX, scVI) has one run per mode and seed,
named ``{method}_{mode}_seed{seed}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class IntegrationMethod:
    """One batch-correction method.

    ``output``: ``"full"`` = the run writes corrected expression values (``layers["corrected"]``: scored
    against the simulated truth, used for DE), ``"embed"`` = an embedding only. What scIB scores is the
    run's ``obsm["X_emb"]`` either way (the PCA of the values, or the method's own latent, e.g. scVI's).
    ``rule``: ``"baseline"`` runs in the shared CPU rule
    ``integrate_baseline``; any other value names the method's own rule (a GPU model).
    ``modes``: True when the method is run per mode and seed (its run names carry both); a stochastic
    baseline uses its modes for settings variants (scVI: ``recommended``, ``genexpaper``).
    """

    name: str
    label: str
    colour: str
    output: str
    rule: str = "baseline"
    modes: bool = False


#: Display order: the reference (unintegrated) first, then the baselines, then the deep models.
INTEGRATION_METHODS: dict[str, IntegrationMethod] = {
    method.name: method
    for method in [
        IntegrationMethod("unintegrated", "Unintegrated", "#9E9E9E", "full"),
        IntegrationMethod("combat", "ComBat", "#E69F00", "full"),
        IntegrationMethod("harmony", "Harmony", "#009E73", "embed"),
        IntegrationMethod("scanorama", "Scanorama", "#CC79A7", "embed"),
        # modes of scVI = settings variants: scvi-tools' recommended ones, or the GENEX paper's
        IntegrationMethod("scvi", "scVI", "#56B4E9", "full", rule="train_scvi", modes=True),
        IntegrationMethod("genex", "GENEX", "#0072B2", "full", rule="train_genex", modes=True),
    ]
}

#: The method every dataset scores, whether or not its config lists it.
REFERENCE_METHOD = "unintegrated"
#: Colour of each GENEX-like mode (all seeds of a mode share it); other modes use the method's colour.
MODE_COLOURS = {"corrected": "#0072B2", "faithful": "#D55E00"}

_MODE_RUN = re.compile(r"^(?P<method>[a-z0-9]+)_(?P<mode>[a-z]+)_seed(?P<seed>\d+)$")


def baseline_methods() -> list[str]:
    """Methods run by the shared ``integrate_baseline`` rule."""
    return [name for name, method in INTEGRATION_METHODS.items() if method.rule == "baseline"]


def run_names(method: str, modes=(), seeds=()) -> list[str]:
    """The runs of one method: its name, or ``{method}_{mode}_seed{seed}`` for each mode and seed."""
    if not INTEGRATION_METHODS[method].modes:
        return [method]
    return [f"{method}_{mode}_seed{seed}" for mode in modes for seed in seeds]


def run_pattern() -> str:
    """Regex matching every possible run name (for Snakemake wildcard constraints)."""
    plain = [re.escape(name) for name, method in INTEGRATION_METHODS.items() if not method.modes]
    moded = [rf"{re.escape(name)}_[a-z]+_seed\d+" for name, method in INTEGRATION_METHODS.items() if method.modes]
    return "|".join(plain + moded)


def parse_run(run: str) -> tuple[IntegrationMethod, str, int] | None:
    """(method, mode, seed) of a run name; mode "" and seed 0 for methods without modes; None if unknown."""
    run = str(run)
    if run in INTEGRATION_METHODS and not INTEGRATION_METHODS[run].modes:
        return INTEGRATION_METHODS[run], "", 0
    match = _MODE_RUN.match(run)
    if match and match["method"] in INTEGRATION_METHODS and INTEGRATION_METHODS[match["method"]].modes:
        return INTEGRATION_METHODS[match["method"]], match["mode"], int(match["seed"])
    return None


def has_full_output(run: str) -> bool:
    """Whether a run writes corrected values (``layers["corrected"]``), not only an embedding."""
    parsed = parse_run(run)
    return parsed is not None and parsed[0].output == "full"
