"""Rule value_distribution: histograms (shared bins) and zero/negative shares of corrected values."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

import anndata as ad
import pandas as pd

from deepexpr.io import write_table
from deepexpr.metrics.integration import shared_bins, value_histogram, value_summary
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = {Path(path).stem: ad.read_h5ad(path) for path in snakemake.input.runs}
    bins = shared_bins(runs.values())
    write_table(pd.concat([value_histogram(run, bins, name) for name, run in runs.items()]), snakemake.output.histogram)
    write_table(pd.DataFrame([value_summary(run, name) for name, run in runs.items()]), snakemake.output.summary)
