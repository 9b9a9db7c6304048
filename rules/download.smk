# Download of external inputs (http, https, ftp): retries, progress in the log, atomic writes,
# and the checksum enforced with ensure(); an unpinned file has the checksum it was seen with
# recorded next to it (README: "Pinning checksums").


rule download:
    output:
        file=ensure("resources/downloads/{dataset}/{file}", sha256=expected_sha256),
        checksum="resources/downloads/{dataset}/{file}.sha256",
    log:
        "logs/{dataset}/download/{file}.log",
    wildcard_constraints:
        file=r"(?!.*\.sha256$)[^/]+",
    retries: 1
    # Compute nodes often have no internet: downloads run where snakemake runs.
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        url=lambda wildcards: download_entry(wildcards)["source"],
        sha256=lambda wildcards: download_entry(wildcards)["sha256"],
    script:
        "../workflow_scripts/data/download.py"
