"""requirements.lock: every requirement of pyproject.toml pinned to a version it allows, and the
check that `make setup` and CI run refuses a lock that pyproject.toml has moved away from."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$")


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def direct_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    names = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in names + PYPROJECT["build-system"]["requires"]]


@pytest.mark.parametrize("requirement", direct_requirements(), ids=str)
def test_every_requirement_is_pinned_within_its_range(requirement):
    pins = locked_versions()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
    )


def test_torch_is_the_public_version_with_no_local_build_label():
    # `torch==2.13.0+cpu` would not install where the local CPU file is missing
    assert locked_versions()["torch"] == "2.13.0"


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/lock.py", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def copy_of_project(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "lock.py", tmp_path / "scripts" / "lock.py")
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def test_the_committed_lock_is_current(copy_of_project):
    result = _check(copy_of_project)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "change",
    [
        ('"numpy>=2.0,<3"', '"numpy>=2.1,<3"'),  # a range changed
        ('"anthropic>=2.0,<3",', '"anthropic>=2.0,<3",\n  "scipy>=1.13",'),  # a dependency added
        ('"pytest>=8",', '"pytest>=9",'),  # the dev extra changed
    ],
)
def test_a_changed_pyproject_without_relocking_is_refused(copy_of_project, change):
    pyproject = copy_of_project / "pyproject.toml"
    text = pyproject.read_text()
    assert change[0] in text
    pyproject.write_text(text.replace(change[0], change[1]))
    result = _check(copy_of_project)
    assert result.returncode == 1
    assert "requirements.lock is out of date" in result.stderr
    assert "Run `make lock`" in result.stderr


def test_an_unrelated_pyproject_change_keeps_the_lock(copy_of_project):
    pyproject = copy_of_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("line-length = 100", "line-length = 99"))
    assert _check(copy_of_project).returncode == 0


def test_a_missing_lock_says_how_to_make_one(copy_of_project):
    (copy_of_project / "requirements.lock").unlink()
    result = _check(copy_of_project)
    assert result.returncode == 1 and "make lock" in result.stderr
