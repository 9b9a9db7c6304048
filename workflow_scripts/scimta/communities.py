"""Rule scimta_communities: mean expression (imputed, z-scored) of each gene community per scIMTA
cell cluster, and the communities that explain each cluster."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.scimta import community_scores, explaining_communities
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    imputed = ad.read_h5ad(snakemake.input.imputed)
    cells = read_table(snakemake.input.cells).set_index("cell").reindex(imputed.obs_names)
    communities = read_table(snakemake.input.communities).set_index("gene")["community"]
    table = community_scores(imputed.X, imputed.var_names, cells["cluster"].to_numpy(), communities, snakemake.params.min_genes)
    write_table(table.reset_index(), snakemake.output.scores)
    write_table(explaining_communities(table, snakemake.params.threshold), snakemake.output.explaining)
