"""Rule archs4_from_tables: count tables (one per series) and sample labels as an ARCHS4-schema HDF5 file."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.archs4.tables import archs4_from_tables
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    samples = archs4_from_tables(
        dict(zip(snakemake.params.series, snakemake.input.tables)),
        snakemake.output.archs4,
        labels=snakemake.input.labels[0] if snakemake.input.labels else None,
        label_sample_column=snakemake.params.label_sample_column,
    )
    log.info("wrote %d samples; per series: %s", len(samples), samples["series_id"].value_counts().to_dict())
