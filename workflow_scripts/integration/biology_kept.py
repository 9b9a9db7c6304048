"""Rule biology_kept: how much simulated condition signal survives each run (AUPRC of its donor-pseudobulk
condition DE for the condition-affected genes), beside the run's scIB total; mean and sd over seeds."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.evaluate.benchmark import biology_kept
from deepexpr.evaluate.integration import seed_summary
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    genes = ad.read_h5ad(snakemake.input.prepared, backed="r").var_names
    affected = ad.read_h5ad(snakemake.input.truth, backed="r").var["condition_affected"]
    scib = pd.read_csv(snakemake.input.scib, sep="\t").set_index("run")
    rows = []
    for path in snakemake.input.tables:
        run = Path(path).stem.removeprefix("pseudobulk_")
        if run not in scib.index:
            raise KeyError(f"{snakemake.input.scib}: no row for run {run!r}")
        score = biology_kept(pd.read_csv(path, sep="\t"), affected, genes)
        identity = scib.loc[run, ["method", "mode", "seed", "note", "total", "bio_conservation", "batch_correction"]]
        rows.append({"run": run, **identity.to_dict(), **score})
        log.info("%s: biology kept AUPRC %.3f (chance %.3f), scIB total %.3f", run, score["biology_kept_auprc"], score["chance_auprc"], identity["total"])
    table = pd.DataFrame(rows)
    write_table(table, snakemake.output.table)
    write_table(seed_summary(table, ["biology_kept_auprc", "total", "bio_conservation", "batch_correction"]), snakemake.output.seeds)
