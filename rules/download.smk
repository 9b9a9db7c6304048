# Download of external inputs (http, https, ftp): retries, progress in the log, atomic writes,
# and the checksum enforced with ensure(); an unpinned file has the checksum it was seen with
# recorded next to it (README: "Pinning checksums").


def download_entry(wildcards):
    entry = downloads(wildcards.dataset).get(wildcards.file)
    if entry is None:
        raise ValueError(
            f"config datasets.{wildcards.dataset}: no URL source is named {wildcards.file!r}"
        )
    return entry


def expected_sha256(wildcards):
    """The pinned checksum, or for an unpinned file the one the download recorded."""
    pinned = download_entry(wildcards)["sha256"]
    if pinned:
        return pinned
    record = Path(f"resources/downloads/{wildcards.dataset}/{wildcards.file}.sha256")
    return record.read_text().split()[0]


rule download:
    output:
        file=ensure("resources/downloads/{dataset}/{file}", sha256=expected_sha256),
        checksum="resources/downloads/{dataset}/{file}.sha256",
    params:
        url=lambda wildcards: download_entry(wildcards)["source"],
        sha256=lambda wildcards: download_entry(wildcards)["sha256"],
    log:
        "logs/{dataset}/download/{file}.log",
    wildcard_constraints:
        file=r"(?!.*\.sha256$)[^/]+",
    conda:
        "../envs/core.yaml"
    threads: 1
    retries: 1
    script:
        "../workflow_scripts/download.py"
