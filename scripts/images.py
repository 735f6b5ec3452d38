"""The prebuilt images and the package they install: how the release builds the sdist and the wheel
once, and how each image installs that very wheel.

Every image in ``vertex_loadtest._images.IMAGES`` has ``containers/<image>/Dockerfile`` and
``containers/<image>/requirements.lock``. The Dockerfile names the package extra it installs
(``ARG EXTRA=...``); the lock file is compiled from exactly that extra (``make locks``).

A release (``cloudbuild.yaml``) builds in two steps, which the tests and ``make bench`` reproduce in
fresh virtual environments (no Docker engine needed):

1. the sdist and the wheel are built once into ``dist/`` with ``python -m build --no-isolation`` in a
   virtual environment holding only the hash-pinned build tools (``containers/build-requirements.lock``:
   the build backend and the ``build`` frontend, nothing unpinned fetched); that wheel is published;
2. each image copies that wheel from ``dist/`` and installs its lock file
   (``pip install --require-hashes --no-deps -r``) and then the wheel with the image's extra, with no
   index at all (``--no-index --find-links``), so the install fails when the lock file does not cover
   the extra.

Standard library only: ``make locks`` runs it before anything else is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = REPO_ROOT / "containers"
BUILD_LOCK = CONTAINERS / "build-requirements.lock"
PACKAGE = "vertex-loadtest"
#: What the sdist and the wheel are built from (everything else in the work tree stays out of them).
BUILD_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "components")
#: The build frontend, pinned in ``containers/build-requirements.lock`` beside the build backend.
BUILD_FRONTEND = "build"
#: The images run Python 3.11 on x86_64 Linux (python:3.11-slim); locks are resolved for that.
LOCK_PYTHON = "3.11"
LOCK_PLATFORM = "x86_64-manylinux_2_28"

#: The install commands, as the Dockerfiles spell them (a test checks they do).
LOCK_INSTALL = ("pip", "install", "--require-hashes", "--no-deps", "-r")
WHEEL_INSTALL = ("pip", "install", "--no-index", "--find-links")
#: The one build of the sdist and the wheel, as cloudbuild.yaml spells it (a test checks it does).
DIST_BUILD = ("python", "-m", "build", "--no-isolation", "--outdir")
#: Where the release writes the sdist and the wheel, and where the Dockerfiles copy the wheel from.
DIST_DIR = "dist"
#: The build's output (stdout and stderr), kept beside the build's work directory for the tests.
BUILD_LOG = "build.log"

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

    The build lock pins the build backend of ``[build-system] requires`` and the ``build`` frontend;
    each image's lock is compiled
    from ``pyproject.toml`` with that image's extra, for the images' Python and platform.
    """
    common = ["--generate-hashes", "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    build_requires = "\n".join([*pyproject["build-system"]["requires"], BUILD_FRONTEND]) + "\n"
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


def run(command: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Runs ``command`` capturing its output; raises RuntimeError with the output's tail if it fails."""
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


def build_dist(work: Path, outdir: Path | None = None, python: str = sys.executable) -> Path:
    """Builds the sdist and the wheel as the release does; returns the directory holding both
    (``outdir``, by default ``work/dist``).

    The sources are copied first, so the shared work tree gets no ``build/`` or ``*.egg-info`` from it;
    the build runs in a fresh virtual environment with only the hash-pinned build tools.
    """
    context = work / "context"
    for name in BUILD_SOURCES:
        source = REPO_ROOT / name
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: the sdist and the wheel are built from it")
        if source.is_dir():
            shutil.copytree(
                source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            context.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    pip = fresh_env(work / "build-venv", python)
    run([pip, *LOCK_INSTALL[1:], BUILD_LOCK])
    dist = outdir or work / DIST_DIR
    built = run([pip.parent / DIST_BUILD[0], *DIST_BUILD[1:], dist, context])
    (work / BUILD_LOG).write_text(built.stdout + built.stderr, encoding="utf-8")
    return dist


def fresh_env(env: Path, python: str = sys.executable) -> Path:
    """Creates a virtual environment at ``env``; returns its pip."""
    run([python, "-m", "venv", env])
    return venv_bin(env) / "pip"


def install_image_env(item: Recipe, wheel_dir: Path, env: Path, python: str = sys.executable) -> Path:
    """Installs ``item``'s image into a fresh virtual environment at ``env``, as its Dockerfile does."""
    pip = fresh_env(env, python)
    run([pip, *LOCK_INSTALL[1:], item.lock])
    run([pip, *WHEEL_INSTALL[1:], wheel_dir, item.requirement])
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
    sub.add_parser("dist", help=f"build the sdist and the wheel into {DIST_DIR}/, as a release does")
    args = parser.parse_args(argv)
    if args.command == "locks":
        write_locks()
    elif args.command == "dist":
        outdir = REPO_ROOT / DIST_DIR
        for stale in outdir.glob("vertex_loadtest-*"):  # the images copy dist/*.whl: one wheel only
            stale.unlink()
        with tempfile.TemporaryDirectory() as work:
            build_dist(Path(work), outdir)
        print("\n".join(sorted(str(path.relative_to(REPO_ROOT)) for path in outdir.iterdir())))
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
