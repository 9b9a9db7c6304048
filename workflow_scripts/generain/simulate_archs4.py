"""Rule simulate_archs4: an ARCHS4-schema HDF5 file with planted gene modules and its attribute table."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.archs4 import simulate_archs4
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    table = simulate_archs4(
        snakemake.output.archs4, snakemake.output.attributes, seed=snakemake.params.seed, **snakemake.params.simulate
    )
    log.info("simulated %d genes, %d in planted modules", len(table), (table["module"] != "none").sum())
