"""Rule download: fetch one URL with retries and checksum; record the checksum seen."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.download import fetch, record_checksum
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    digest = fetch(snakemake.params.url, snakemake.output.file, sha256=snakemake.params.sha256, log=log)
    record_checksum(snakemake.output.file, digest, snakemake.output.checksum)
