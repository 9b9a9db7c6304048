"""Rules figure_scib_seeds, figure_biology_kept, figure_explain_auroc: the benchmark figures with spread over seeds."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots import benchmark
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot = getattr(benchmark, f"plot_{snakemake.params.figure}")
    plot(snakemake.input.table, snakemake.output[0], dataset=snakemake.wildcards.dataset)
