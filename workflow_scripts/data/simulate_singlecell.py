"""Rule simulate_singlecell: simulated counts plus the batch-free truth of the same cells."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.singlecell.simulate import simulate_singlecell, write_simulation
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    params = dict(snakemake.params.simulate)
    # Planted gene modules are the simulator's own argument, not a cell-level parameter.
    modules = params.pop("modules", None)
    raw, truth = simulate_singlecell(params, seed=snakemake.params.seed, modules=modules)
    raw.uns["deepexpr"]["dataset"] = snakemake.wildcards.dataset
    log.info("simulated %d cells x %d genes", raw.n_obs, raw.n_vars)
    write_simulation(raw, truth, snakemake.output.adata, snakemake.output.truth)
