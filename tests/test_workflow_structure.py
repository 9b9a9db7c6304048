"""Static checks of the workflow: rule shape, lint, formatting, dry runs of every shipped config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import parsed_workflow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def rules():
    return {rule.name: rule for rule in parsed_workflow().rules}


def code_rules(rules):
    return {name: rule for name, rule in rules.items() if rule.script or rule.shellcmd or rule.is_run}


def rule_blocks() -> dict[str, str]:
    """Text of each named rule in rules/*.smk."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", smk.read_text(), flags=re.M)
        blocks.update(dict(zip(parts[1::2], parts[2::2])))
    return blocks


def test_every_code_rule_has_log_conda_and_threads(rules):
    blocks = rule_blocks()
    for name, rule in code_rules(rules).items():
        assert rule.log, f"rule {name} has no log:"
        assert rule.conda_env, f"rule {name} has no conda:"
        assert re.search(r"^\s+threads:", blocks[name], flags=re.M), f"rule {name} has no threads:"


def test_training_rules_request_a_gpu(rules):
    training = [name for name in rules if name.startswith("train_")]
    assert training, "no training rules found"
    for name in training:
        assert rules[name].resources.get("gpu") == 1, f"rule {name} must carry resources: gpu=1"
        assert rules[name].benchmark, f"rule {name} must have benchmark:"


def test_heavy_rules_have_benchmarks(rules):
    for name in ["deseq2", "generative_de", "enrich", "integrate_baseline", "scib", "truth_metrics", "explain_genex"]:
        assert rules[name].benchmark, f"rule {name} must have benchmark:"


def test_one_target_rule_per_dataset(rules):
    for dataset in ["sim_bulk", "gse60450", "sim_pbmc", "sim_covid", "pbmc", "covid"]:
        assert dataset in rules, f"no target rule named {dataset}"
    assert "all" in rules


def test_scripts_are_thin():
    scripts = sorted((REPO / "workflow_scripts").rglob("*.py"))
    assert scripts, "no workflow scripts found"
    for script in scripts:
        lines = [line for line in script.read_text().splitlines() if line.strip()]
        assert len(lines) <= 40, f"{script.name} has {len(lines)} lines; move logic into src/deepexpr"
        assert "def " not in script.read_text(), f"{script.name} defines functions; move them into src/deepexpr"


def run(*args, cwd=REPO, timeout=300):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_lint_prints_nothing():
    result = run(str(BIN / "snakemake"), "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_snakefmt_check_passes():
    result = run(str(BIN / "snakefmt"), "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def offline(shared_data):
    """Arguments of an offline run reading the real files from the shared_data fixture's folder."""
    return ["--configfile", "config/offline.yaml", "--config", f"shared_data={shared_data}"]


@pytest.mark.parametrize(
    "extra",
    [[], ["--configfile", "config/offline.yaml"], ["--configfile", "config/paper.yaml"]],
    ids=["default", "offline", "paper"],
)
def test_dry_run(extra, request):
    if "config/offline.yaml" in extra:
        extra = [*extra, *offline(request.getfixturevalue("shared_data"))]
    result = run(str(BIN / "snakemake"), "-n", "--cores", "2", *extra)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_by_dataset_name(shared_data):
    result = run(str(BIN / "snakemake"), "-n", "--cores", "2", "gse60450", *offline(shared_data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "download" not in result.stdout, "offline config must not download"


def test_dry_run_by_dataset_name_downloads():
    paper = run(str(BIN / "snakemake"), "-n", "--cores", "2", "gse60450")
    assert paper.returncode == 0, paper.stdout + paper.stderr
    assert "rule download" in paper.stdout or "download" in paper.stdout


@pytest.mark.parametrize("dataset", ["pbmc", "covid"])
def test_dry_run_single_cell_by_name(dataset, shared_data):
    local = run(str(BIN / "snakemake"), "-n", "--cores", "2", dataset, *offline(shared_data))
    assert local.returncode == 0, local.stdout + local.stderr
    assert "download" not in local.stdout, "offline config must not download"
    for rule in ["prepare_singlecell", "train_genex", "train_scvi", "scib", "explain_genex"]:
        assert rule in local.stdout, f"snakemake {dataset} -n does not schedule {rule}"


@pytest.mark.parametrize("dataset", ["pbmc", "covid"])
def test_dry_run_single_cell_by_name_downloads(dataset):
    paper = run(str(BIN / "snakemake"), "-n", "--cores", "2", dataset)
    assert paper.returncode == 0, paper.stdout + paper.stderr
    assert "download" in paper.stdout


def test_config_typo_stops_the_run():
    result = run(str(BIN / "snakemake"), "-n", "--cores", "1", "--config", "sed=3")
    assert result.returncode != 0
    assert "unknown key 'sed'" in result.stdout + result.stderr


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = re.findall(r"^python3 -m venv \.venv .*$", readme, flags=re.M)
    assert len(commands) == 2, "README quick start must have exactly two commands"
    test_command = [c for c in commands if "pytest" in c]
    assert test_command and test_command[0] in ci, ".ci/run must call the README's test command"


def test_snakefile_is_a_table_of_contents():
    snakefile = (REPO / "Snakefile").read_text()
    includes = re.findall(r'^include: "rules/(\w+)\.smk"$', snakefile, flags=re.M)
    assert includes == ["common", "download", "simulate", "normalize", "bulk_de", "integration", "generain", "sivae", "scimta"]
    assert "def " not in snakefile, "helpers belong in rules/common.smk or rules/helpers/<study>.smk"
    assert re.search(r'^report: "resources/workflow\.rst"$', snakefile, flags=re.M)
    assert (REPO / "resources" / "workflow.rst").is_file()


def test_every_script_exists_and_is_used():
    named = set()
    for smk in (REPO / "rules").rglob("*.smk"):
        for script in re.findall(r'^\s+"\.\./(workflow_scripts/[\w/]+\.py)"$', smk.read_text(), flags=re.M):
            assert (REPO / script).is_file(), f"{smk.name} names a missing script {script}"
            named.add(script)
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "workflow_scripts").rglob("*.py")}
    assert shipped == named, f"scripts no rule runs: {sorted(shipped - named)}"
    for script in shipped:
        assert script.split("/")[1] in {"data", "bulk_de", "integration", "generain", "sivae", "scimta"}, f"{script}: not in a study folder"


def test_gpu_work_is_tagged_and_cheap_rules_are_local(rules):
    local = {name for name, rule in rules.items() if rule.name in rule.workflow._localrules}
    assert "download" in local and "compare_de" in local
    assert {name for name in rules if name.startswith("figure_")} <= local
    gpu = {name for name, rule in rules.items() if "gpu" in rule.resources}
    assert gpu == {"train_nbvae", "train_genex", "train_scvi", "train_generain", "train_sivae", "train_plain_vae", "sivae_ldvae", "scimta_train", "scimta_search"}, gpu
    assert not gpu & local
