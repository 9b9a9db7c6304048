"""Rule simulate_bulk: GSE60450-like counts, sample sheet, truth and planted gene modules."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.bulk.simulate import simulate_from_config, write_simulation
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    simulation = simulate_from_config(snakemake.params.simulate, seed=snakemake.params.seed)
    log.info("simulated %d genes x %d samples", *simulation.counts.iloc[:, 1:].shape)
    out = snakemake.output
    write_simulation(simulation, out.counts, out.samples, out.truth, out.genesets)
