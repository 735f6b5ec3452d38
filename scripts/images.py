"""The prebuilt images: where each one's Dockerfile and lock file live, and the install it runs.

Every image in ``vertex_loadtest._images.IMAGES`` has ``containers/<image>/Dockerfile`` and
``containers/<image>/requirements.lock``. The Dockerfile names the package extra it installs
(``ARG EXTRA=...``); the lock file is compiled from exactly that extra (``make locks``).

An image is built in two steps, which the Dockerfiles run and the tests and ``make bench`` reproduce
in a fresh virtual environment (no Docker engine needed):

1. the wheel is built from the sources with the hash-pinned build backend
   (``containers/build-requirements.lock``, no build isolation, nothing unpinned fetched);
2. a virtual environment gets the image's lock file (``pip install --require-hashes --no-deps -r``)
   and then the wheel with the image's extra, with no index at all (``--no-index --find-links``),
   so the install fails when the lock file does not cover the extra.

Standard library only: ``make locks`` runs it before anything else is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = REPO_ROOT / "containers"
BUILD_LOCK = CONTAINERS / "build-requirements.lock"
PACKAGE = "vertex-loadtest"
#: What the Docker build context must contain to build the wheel (the Dockerfiles COPY exactly this).
BUILD_SOURCES = ("pyproject.toml", "README.md", "components")
#: The images run Python 3.11 on x86_64 Linux (python:3.11-slim); locks are resolved for that.
LOCK_PYTHON = "3.11"
LOCK_PLATFORM = "x86_64-manylinux_2_28"

#: The install commands, as the Dockerfiles spell them (a test checks they do).
LOCK_INSTALL = ("pip", "install", "--require-hashes", "--no-deps", "-r")
WHEEL_INSTALL = ("pip", "install", "--no-index", "--find-links")

#: Site-packages budget of each image in MB (10**6 bytes), checked by the tests and reported by
#: ``make bench``. Load test and gate are the issue's targets; the cleanup image carries
#: google-cloud-aiplatform, which alone is most of it.
BUDGET_MB = {"locust-load-test": 200, "latency-gate": 120, "endpoint-cleanup": 400}
#: Distributions an image must never contain (normalized names).
FORBIDDEN = {
    "latency-gate": ("google-cloud-aiplatform", "google-cloud-pipeline-components", "locust", "gevent"),
    "endpoint-cleanup": ("locust", "gevent", "geventhttpclient"),
}

_EXTRA_ARG = re.compile(r"^ARG EXTRA=([A-Za-z0-9_-]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Recipe:
    """How one image is built: its Dockerfile, its lock file and the package extra it installs."""

    image: str
    dockerfile: Path
    lock: Path
    extra: str

    @property
    def requirement(self) -> str:
        return f"{PACKAGE}[{self.extra}]"


def image_names() -> tuple[str, ...]:
    """Returns every image the package names (``vertex_loadtest._images.IMAGES``)."""
    sys.path.insert(0, str(REPO_ROOT / "components"))
    try:
        from vertex_loadtest._images import IMAGES
    finally:
        sys.path.pop(0)
    return tuple(IMAGES)


def recipe(image: str) -> Recipe:
    """Returns the recipe of ``image``, read from its Dockerfile.

    Raises:
        FileNotFoundError: the image has no Dockerfile.
        ValueError: the Dockerfile declares no ``ARG EXTRA=<extra>``.
    """
    dockerfile = CONTAINERS / image / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    match = _EXTRA_ARG.search(text)
    if not match:
        raise ValueError(f"{dockerfile} declares no 'ARG EXTRA=<extra>': say which package extra it installs")
    return Recipe(image, dockerfile, dockerfile.parent / "requirements.lock", match.group(1))


def recipes() -> list[Recipe]:
    return [recipe(image) for image in image_names()]


def _uv() -> str:
    found = shutil.which(
        "uv", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if not found:
        raise SystemExit("uv is not installed: pip install -e '.[dev]' (it is in the dev extra)")
    return found


def lock_commands() -> list[tuple[list[str], str | None]]:
    """Returns (command, standard input) for every lock file, to run from the repository root.

    The build lock pins the build backend of ``[build-system] requires``; each image's lock is compiled
    from ``pyproject.toml`` with that image's extra, for the images' Python and platform.
    """
    common = ["--generate-hashes", "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    build_requires = "\n".join(pyproject["build-system"]["requires"]) + "\n"
    commands: list[tuple[list[str], str | None]] = [
        (
            ["uv", "pip", "compile", "-", *common, "--output-file", str(BUILD_LOCK.relative_to(REPO_ROOT))],
            build_requires,
        )
    ]
    for item in recipes():
        output = str(item.lock.relative_to(REPO_ROOT))
        command = [
            "uv",
            "pip",
            "compile",
            "pyproject.toml",
            "--extra",
            item.extra,
            *common,
            "--output-file",
            output,
        ]
        commands.append((command, None))
    return commands


def write_locks() -> None:
    """Regenerates ``containers/build-requirements.lock`` and every image's ``requirements.lock``."""
    uv = _uv()
    for command, stdin in lock_commands():
        print("+", " ".join(command), flush=True)
        subprocess.run([uv, *command[1:]], cwd=REPO_ROOT, input=stdin, text=True, check=True)


def _run(command: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False, **kwargs
    )  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(map(str, command))}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def venv_bin(env: Path) -> Path:
    return env / "bin"


def build_wheel(work: Path, python: str = sys.executable) -> Path:
    """Builds the package wheel as the Dockerfiles' build stage does; returns the wheel directory.

    The sources are copied first (what the Docker build context holds), so the shared work tree gets
    no ``build/`` or ``*.egg-info`` from it.
    """
    context = work / "context"
    for name in BUILD_SOURCES:
        source = REPO_ROOT / name
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: the Dockerfiles COPY it into the build context")
        if source.is_dir():
            shutil.copytree(
                source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            context.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    builder = work / "build-venv"
    _run([python, "-m", "venv", builder])
    pip = venv_bin(builder) / "pip"
    _run([pip, *LOCK_INSTALL[1:], BUILD_LOCK])
    dist = work / "dist"
    _run([pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, context])
    return dist


def install_image_env(item: Recipe, wheel_dir: Path, env: Path, python: str = sys.executable) -> Path:
    """Installs ``item``'s image into a fresh virtual environment at ``env``, as its Dockerfile does."""
    _run([python, "-m", "venv", env])
    pip = venv_bin(env) / "pip"
    _run([pip, *LOCK_INSTALL[1:], item.lock])
    _run([pip, *WHEEL_INSTALL[1:], wheel_dir, item.requirement])
    return env


def site_packages(env: Path) -> Path:
    (found,) = (env / "lib").glob("python3*/site-packages")
    return found


def tree_size(path: Path) -> int:
    """Returns the bytes of every regular file under ``path`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def installed_distributions(env: Path) -> dict[str, str]:
    """Returns {normalized distribution name: version} installed in ``env``."""
    found = {}
    for metadata in site_packages(env).glob("*.dist-info/METADATA"):
        name = version = ""
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name: "):
                name = line[6:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            if not line:
                break
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.images", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("locks", help="regenerate every lock file under containers/ with uv (needs the registry)")
    sub.add_parser("list", help="print image, extra, Dockerfile and lock file of every image")
    args = parser.parse_args(argv)
    if args.command == "locks":
        write_locks()
    else:
        for item in recipes():
            print(
                item.image,
                item.extra,
                item.dockerfile.relative_to(REPO_ROOT),
                item.lock.relative_to(REPO_ROOT),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
