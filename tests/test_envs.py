"""Per-rule conda environments: they parse, pin every package, and agree with requirements.txt."""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.\-]*)$")
CONDA_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)=([0-9][0-9A-Za-z.\-]*)$")


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-e"):
            continue
        match = PIN.match(line)
        assert match, f"requirements.txt: {line!r} is not pinned as name==version"
        pins[match[1].lower()] = match[2]
    return pins


def env_dependencies(path: Path) -> tuple[list[str], list[str]]:
    env = yaml.safe_load(path.read_text())
    conda, pip = [], []
    for dependency in env["dependencies"]:
        if isinstance(dependency, dict):
            pip.extend(dependency["pip"])
        else:
            conda.append(dependency)
    return conda, pip


def test_there_are_env_files():
    assert {p.stem for p in ENV_FILES} >= {"core", "torch", "deseq2", "enrich"}


def test_requirements_match_installed_versions():
    for name, pinned in requirement_pins().items():
        installed = version(name).split("+")[0]
        assert installed == pinned, f"requirements.txt pins {name}=={pinned}, installed {installed}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_parses_and_pins_every_package(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] and "dependencies" in env, f"{path.name}: needs channels and dependencies"
    conda, pip = env_dependencies(path)
    for dependency in conda:
        assert CONDA_PIN.match(dependency), f"{path.name}: conda dependency {dependency!r} is not pinned (name=version)"
    for dependency in pip:
        assert PIN.match(dependency), f"{path.name}: pip dependency {dependency!r} is not pinned (name==version)"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_versions_agree_with_test_environment(path):
    pins = requirement_pins()
    conda, pip = env_dependencies(path)
    for dependency in pip:
        name, pinned = PIN.match(dependency).groups()
        assert name.lower() in pins, f"{path.name}: {name} is not in requirements.txt"
        assert pins[name.lower()] == pinned, f"{path.name}: {name}=={pinned} but requirements.txt pins {pins[name.lower()]}"


def requires_python() -> SpecifierSet:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return SpecifierSet(project["requires-python"])


def test_running_python_satisfies_requires_python():
    running = ".".join(map(str, sys.version_info[:3]))
    assert requires_python().contains(running), (
        f"the tests run on Python {running}, outside pyproject's requires-python {requires_python()}"
    )


def test_envs_pin_one_python_that_satisfies_requires_python():
    pins = {}
    for path in ENV_FILES:
        conda, _ = env_dependencies(path)
        pins[path.name] = dict(CONDA_PIN.match(d).groups() for d in conda)["python"]
    assert len(set(pins.values())) == 1, f"the envs pin different Pythons: {pins}"
    for name, python in pins.items():
        assert requires_python().contains(python), (
            f"{name}: python={python} is outside pyproject's requires-python {requires_python()}"
        )


def test_every_rule_env_exists():
    named = set()
    for smk in (REPO / "rules").rglob("*.smk"):
        named.update(re.findall(r'"\.\./envs/([a-z0-9_]+\.yaml)"', smk.read_text()))
    assert named, "no rule names a conda env"
    missing = named - {p.name for p in ENV_FILES}
    assert not missing, f"rules name env files that do not exist: {sorted(missing)}"
