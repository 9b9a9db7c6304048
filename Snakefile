# deepexpr: interpretable deep generative models of gene expression.
# Table of contents only; each stage lives in rules/<stage>.smk, all logic in src/deepexpr.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/simulate.smk"
include: "rules/normalize.smk"
include: "rules/train.smk"
include: "rules/correct.smk"
include: "rules/explain.smk"
include: "rules/de.smk"
include: "rules/evaluate.smk"
include: "rules/enrich.smk"
include: "rules/figures.smk"


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
