"""The SLURM profile: every job of a rule tagged `resources: gpu=1` asks for a GPU and lands on a
partition that has GPUs, when the profile is given as documented (`--workflow-profile profiles/slurm`).

The paper run is dry-run with the profile (conda, absent here, swapped for the plain environment);
each scheduled job's resources are then handed to snakemake-executor-plugin-slurm's own functions
that build the sbatch GPU flags and choose the partition, so the check follows the plugin.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import parsed_workflow

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
PROFILE = REPO / "profiles" / "slurm"

partitions = pytest.importorskip("snakemake_executor_plugin_slurm.partitions")
slurm_utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")


class Resources(dict):
    """A job's resources as the plugin reads them (``.get`` and attribute access)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


def parse_value(value: str):
    try:
        return int(value)
    except ValueError:
        return value


def local_rules() -> set[str]:
    """Names of the rules Snakemake runs on the submitting machine (`localrule: True`)."""
    workflow = parsed_workflow()
    # workflow.is_local() is True for every rule in a local run; the declared set is what counts.
    return {rule.name for rule in workflow.rules if rule.name in workflow._localrules or rule.norun}


def dry_run_jobs(profile: Path, *extra: str) -> tuple[str, list[SimpleNamespace]]:
    """(snakemake's output, one job per scheduled rule instance with its resources and threads)."""
    result = subprocess.run(
        [str(SNAKEMAKE), "-n", "--workflow-profile", str(profile), "--configfile", "config/paper.yaml", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    local = local_rules()
    jobs = []
    for block in re.split(r"(?m)^(?=(?:local)?rule \w+:$)", output):
        header = re.match(r"(?:local)?rule (\w+):$", block, flags=re.M)
        if not header:
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.M)
        parsed = Resources()
        if resources:
            for item in resources[1].split(", "):
                key, _, value = item.partition("=")
                parsed[key] = parse_value(value)
        jobs.append(
            SimpleNamespace(
                name=header[1],
                is_local=header[1] in local,
                resources=parsed,
                threads=int(threads[1]) if threads else 1,
            )
        )
    return output, jobs


def usable_profile(tmp_path: Path, source: Path = PROFILE) -> Path:
    """A copy of the profile that dry-runs here: conda is not installed on the test machine."""
    profile = tmp_path / "slurm"
    shutil.copytree(source, profile)
    config = profile / "config.yaml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join(line for line in lines if not line.startswith("software-deployment-method")) + "\n")
    return profile


def partition_table(profile: Path) -> dict:
    settings = yaml.safe_load((profile / "config.yaml").read_text())
    name = settings.get("slurm-partition-config")
    if not name:
        return {}
    return {p.name: p for p in partitions.read_partition_file(profile / name)}


class QuietLogger:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def submitted_partition(job, table: dict):
    """The partition the plugin submits to: the job's slurm_partition, else its automatic choice."""
    if job.resources.get("slurm_partition"):
        return job.resources["slurm_partition"]
    return partitions.get_best_partition(list(table.values()), job, QuietLogger()) if table else None


def gpu_problems(profile: Path) -> list[str]:
    output, jobs = dry_run_jobs(profile)
    table = partition_table(profile)
    gpu_jobs = [job for job in jobs if job.resources.get("gpu")]
    assert {"train_nbvae", "train_genex", "train_scvi"} <= {job.name for job in gpu_jobs}, (
        "the paper run schedules no GPU training job:\n" + output[-3000:]
    )
    problems = []
    for job in gpu_jobs:
        request = slurm_utils.set_gres_string(job)
        if "--gpus=" not in request and "gpu" not in request:
            problems.append(f"{job.name}: sbatch would get no GPU request ({request!r})")
        partition = submitted_partition(job, table)
        limits = table.get(partition)
        if limits is None or limits.limits.max_gpu < job.resources["gpu"]:
            problems.append(f"{job.name}: submitted to partition {partition!r}, which has no GPUs in the profile")
        if job.is_local:
            problems.append(f"{job.name}: a GPU rule must not be a local rule")
    return sorted(set(problems))


def test_slurm_profile_sends_every_gpu_job_to_a_gpu_partition(tmp_path):
    problems = gpu_problems(usable_profile(tmp_path))
    assert not problems, "\n".join(problems)


def test_cpu_jobs_stay_off_the_gpu_partition(tmp_path):
    profile = usable_profile(tmp_path)
    _, jobs = dry_run_jobs(profile)
    table = partition_table(profile)
    for job in jobs:
        if job.resources.get("gpu") or job.is_local or job.name == "all":
            continue
        partition = submitted_partition(job, table)
        assert partition in table, f"{job.name}: no partition fits it ({partition!r})"
        assert table[partition].limits.max_gpu == 0, f"{job.name} (no GPU) would be sent to GPU partition {partition}"


def test_the_documented_command_uses_only_the_slurm_profile(tmp_path):
    output, _ = dry_run_jobs(usable_profile(tmp_path))
    assert "profiles/default" not in output, "the local profile must not be merged into a cluster run"
    assert "Using workflow specific profile" in output
    for text in (PROFILE / "config.yaml").read_text(), (REPO / "config" / "paper.yaml").read_text():
        assert "--workflow-profile profiles/slurm" in text, "document the command that replaces profiles/default"


def test_downloads_and_figures_run_locally(tmp_path):
    _, jobs = dry_run_jobs(usable_profile(tmp_path))
    for job in jobs:
        if job.name == "download" or job.name.startswith("figure_"):
            assert job.is_local, f"{job.name} must be a local rule (compute nodes often have no internet)"


if __name__ == "__main__":  # `python tests/test_cluster_profile.py`: where each GPU job would go
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        profile = usable_profile(Path(tmp))
        table = partition_table(profile)
        for job in dry_run_jobs(profile)[1]:
            if job.resources.get("gpu"):
                request = slurm_utils.set_gres_string(job).strip()
                print(f"{job.name:14} partition={submitted_partition(job, table)} {request} "
                      f"runtime={job.resources.get('runtime')} mem_mb={job.resources.get('mem_mb')}")
