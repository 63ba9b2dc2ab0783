"""Installation metadata: the intranet wheelhouse path in the Makefile, the lock file, the PEP 639 licence.

The full offline install is `.ci/wheelhouse-check` (minutes, ~400 MB); these checks are cheap and run always.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
INSTALL_TARGETS = ("install", "install-dev", "run", "test")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _make_dry_run(target: str, wheelhouse: str | None) -> list[str]:
    make = shutil.which("make")
    if make is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("make is not installed")
        pytest.skip("make is not installed")
    env = {key: value for key, value in os.environ.items() if key != "MEDFUSION_WHEELHOUSE"}
    if wheelhouse is not None:
        env["MEDFUSION_WHEELHOUSE"] = wheelhouse
    # -B: treat everything as out of date, so the venv and install steps are printed even where .venv exists
    done = subprocess.run(
        [make, "--no-print-directory", "-n", "-B", "-C", str(ROOT), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def _pip_installs(lines: list[str]) -> list[str]:
    return [line for line in lines if " -m pip install " in line]


@pytest.mark.parametrize("target", INSTALL_TARGETS)
def test_every_install_reads_only_the_wheelhouse_when_it_is_set(target: str) -> None:
    lines = _make_dry_run(target, "/srv/medfusion wheels")
    installs = _pip_installs(lines)
    assert installs, lines
    for line in installs:
        assert '--no-index --find-links "/srv/medfusion wheels"' in line, line
    # a folder that `make wheelhouse` did not produce is refused before pip runs
    assert any('test -f "/srv/medfusion wheels/SHA256SUMS"' in line for line in lines), lines


@pytest.mark.parametrize("target", INSTALL_TARGETS)
def test_without_a_wheelhouse_installs_use_the_registry_as_before(target: str) -> None:
    installs = _pip_installs(_make_dry_run(target, None))
    assert installs
    assert not [line for line in installs if "--no-index" in line or "--find-links" in line], installs


def test_make_wheelhouse_downloads_exactly_the_lock_and_builds_our_wheel() -> None:
    lines = _make_dry_run("wheelhouse", None)
    assert any(
        "pip wheel" in line and "--no-deps" in line and "-r requirements/lock.txt" in line for line in lines
    )
    assert any("pip wheel" in line and line.rstrip().endswith(" .") for line in lines), lines
    assert any("sha256sum" in line and "SHA256SUMS" in line for line in lines), lines
    # the folder must resolve medfusion[dev] on its own before it replaces ./wheelhouse
    assert any("--dry-run" in line and "--no-index" in line and "medfusion[dev]" in line for line in lines)


def _locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned line in {LOCK.name}: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _required(extras: set[str]) -> list[Requirement]:
    """Runtime requirements plus the named extras, following ``medfusion[...]`` self-references."""
    project = _pyproject()["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    wanted: list[Requirement] = [Requirement(spec) for spec in project["dependencies"]]
    pending, seen = set(extras), set[str]()
    while pending:
        extra = pending.pop()
        seen.add(extra)
        for spec in optional[extra]:
            requirement = Requirement(spec)
            if canonicalize_name(requirement.name) == "medfusion":
                pending |= requirement.extras - seen
            else:
                wanted.append(requirement)
    return wanted


def test_the_lock_pins_every_runtime_and_dev_requirement_within_its_range() -> None:
    pins = _locked()
    stale = []
    for requirement in _required({"dev"}):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            stale.append(f"{requirement} (locked: {pinned})")
    assert not stale, f"requirements/lock.txt is stale, run `make lock`: {stale}"


def test_the_lock_carries_the_build_backend_and_no_torch() -> None:
    pins = _locked()
    build_requires = [Requirement(spec) for spec in _pyproject()["build-system"]["requires"]]
    for requirement in build_requires:  # `make install` builds the editable wheel from the wheelhouse alone
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None and requirement.specifier.contains(pinned), requirement
    assert "pip" in pins
    assert "torch" not in pins  # not a dependency: the embedding model runs without it


def test_licence_is_declared_the_pep_639_way() -> None:
    pyproject = _pyproject()
    project = pyproject["project"]
    assert isinstance(project["license"], str), "a TOML table licence makes setuptools warn on every install"
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), f"license-files pattern {pattern!r} matches nothing"
    setuptools = next(
        Requirement(spec) for spec in pyproject["build-system"]["requires"] if spec.startswith("setuptools")
    )
    assert not setuptools.specifier.contains("76.1"), "PEP 639 fields need setuptools >= 77"


def test_every_data_file_in_the_package_is_declared_package_data() -> None:
    # the wheelhouse installs our wheel, not the source tree: a file package-data misses is absent there
    package = ROOT / "src" / "medfusion"
    patterns: list[str] = _pyproject()["tool"]["setuptools"]["package-data"]["medfusion"]
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    data = {
        path
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    missing = sorted(str(path.relative_to(package)) for path in data - shipped)
    assert not missing, f"add their patterns to [tool.setuptools.package-data]: {missing}"
