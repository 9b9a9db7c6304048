# deepexpr: interpretable deep generative models of gene expression.
# Table of contents only: shared stages, then one rules file per study; all logic in src/deepexpr.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "resources/workflow.rst"


# What every study shares: config validation, the dataset table, sources, target dispatch.
include: "rules/common.smk"
# Shared data stages: download, simulate, read and prepare.
include: "rules/download.smk"
include: "rules/simulate.smk"
include: "rules/normalize.smk"
# Studies: each file holds its rules, its helpers and its target function.
include: "rules/bulk_de.smk"
include: "rules/integration.smk"
include: "rules/generain.smk"
include: "rules/sivae.smk"
include: "rules/scimta.smk"


rule all:
    default_target: True
    input:
        [dataset_targets(name) for name in config["run"]],
    localrule: True


# One target per dataset: `snakemake gse60450`, `snakemake sim_pbmc`, `snakemake pbmc`, ...
for dataset_name in config["datasets"]:

    rule:
        name:
            dataset_name
        input:
            dataset_targets(dataset_name),
        localrule: True
