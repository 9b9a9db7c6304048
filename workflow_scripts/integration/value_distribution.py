"""Rule value_distribution: histograms (shared bins) and zero/negative shares of corrected values."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import pandas as pd

from deepexpr.io import write_table
from deepexpr.evaluate.integration import read_runs, shared_bins, value_histogram, value_summary
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = read_runs(snakemake.input.runs)
    bins = shared_bins(runs.values())
    write_table(pd.concat([value_histogram(run, bins, name) for name, run in runs.items()]), snakemake.output.histogram)
    write_table(pd.DataFrame([value_summary(run, name) for name, run in runs.items()]), snakemake.output.summary)
