"""The package a release publishes: the sdist and the wheel built once (as cloudbuild.yaml builds them),
checked with twine, uploaded with twine to a real package index on loopback (pypiserver, standing in
for the Artifact Registry Python repository), refused once that version is there, and installed from
that index into a fresh virtual environment the way a team installs it, where the ops import, every
packaged spec loads with ``kfp.components.load_component_from_file`` and the installed copy compiles
to exactly the specs it ships.
"""

import email.parser
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from scripts import images, release

from vertex_loadtest._version import __version__
from vertex_loadtest.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PACKAGE_DIR = images.REPO_ROOT / "components" / "vertex_loadtest"
#: Every spec the repository ships, by globbing only (spec file names are not this test's business).
SPEC_GLOBS = ("**/component.yaml", "pipelines/*.yaml")
CHECKED_IN_SPECS = sorted(
    str(path.relative_to(PACKAGE_DIR)) for pattern in SPEC_GLOBS for path in PACKAGE_DIR.glob(pattern)
)


def _wheel(dist_dir: Path) -> Path:
    (wheel,) = dist_dir.glob("*.whl")
    return wheel


def _metadata(dist_dir: Path):
    with zipfile.ZipFile(_wheel(dist_dir)) as archive:
        text = archive.read(f"vertex_loadtest-{__version__}.dist-info/METADATA").decode("utf-8")
    return email.parser.Parser().parsestr(text)


def test_one_sdist_and_one_wheel_of_this_version_built_without_deprecation_warnings(dist_dir):
    assert [path.name for path in release.check_dist(dist_dir)] == [
        f"vertex_loadtest-{__version__}-py3-none-any.whl",
        f"vertex_loadtest-{__version__}.tar.gz",
    ]
    log = (dist_dir.parent / images.BUILD_LOG).read_text(encoding="utf-8")
    assert "Successfully built" in log
    assert "deprecat" not in log.lower(), log[-3000:]


def test_twine_check_passes_strict(dist_dir):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist_dir.iterdir()))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_metadata_is_what_a_published_package_needs(dist_dir):
    metadata = _metadata(dist_dir)
    assert metadata["Name"] == "vertex-loadtest"
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License"] is None, "PEP 639: the SPDX expression replaces the License field"
    classifiers = metadata.get_all("Classifier")
    assert not [line for line in classifiers if line.startswith("License ::")]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Author"] and metadata["Keywords"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL"))
    pyproject = tomllib.loads((images.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert urls == pyproject["project"]["urls"]  # the index URL agrees with cloudbuild.yaml (unit test)


def test_wheel_and_sdist_carry_every_spec_and_the_license(dist_dir):
    with zipfile.ZipFile(_wheel(dist_dir)) as archive:
        names = set(archive.namelist())
    for relative in CHECKED_IN_SPECS:
        assert f"vertex_loadtest/{relative}" in names, relative
    assert f"vertex_loadtest-{__version__}.dist-info/licenses/LICENSE" in names
    assert not [name for name in names if name.startswith(("tests/", "scripts/", "benchmarks/"))]
    (sdist,) = dist_dir.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= members
    for relative in CHECKED_IN_SPECS:
        assert f"components/vertex_loadtest/{relative}" in members, relative


@pytest.fixture(scope="module")
def local_index(tmp_path_factory):
    """pypiserver on 127.0.0.1 (uploads without authentication, no redirect to PyPI); stops itself."""
    packages = tmp_path_factory.mktemp("index")
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "pypi-server"),
            "run",
            "--host=127.0.0.1",
            f"--port={port}",
            "--authenticate=.",
            "--passwords=.",
            "--disable-fallback",
            str(packages),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}health", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pypiserver did not start: {server.communicate()[1][-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.communicate(timeout=10)  # also closes the stderr pipe
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


@pytest.fixture(scope="module")
def published_index(local_index, dist_dir):
    """The local index after the release's upload: the version was not there, twine uploaded both files."""
    assert release.published_versions(local_index) == set()
    release.check_unpublished(local_index)
    upload = subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", "--repository-url", local_index,
         "--username", "release", "--password", "unused", *map(str, sorted(dist_dir.iterdir()))],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert upload.returncode == 0, upload.stdout + upload.stderr
    return local_index


def test_a_published_version_is_refused(published_index):
    assert release.published_versions(published_index) == {__version__}
    with pytest.raises(release.ReleaseError, match=f"{__version__} is already published"):
        release.check_unpublished(published_index)
    assert release.check_unpublished(published_index, version="999.0.0") is None
    cli = subprocess.run(
        [sys.executable, "-m", "scripts.release", "unpublished", published_index],
        capture_output=True,
        text=True,
        check=False,
        cwd=images.REPO_ROOT,
    )
    assert cli.returncode == 1
    assert "already published" in cli.stderr and "release a new version" in cli.stderr


@pytest.fixture(scope="module")
def installed_env(published_index, tmp_path_factory):
    """A fresh virtual environment with the package installed from the index as a team installs it
    (``--extra-index-url`` beside the public index, the ``pipelines`` extra, the exact version;
    ``--no-compile`` only saves the test the byte-compiling of some thousand files)."""
    env = tmp_path_factory.mktemp("team") / "venv"
    pip = images.fresh_env(env)
    images.run(
        [pip, "install", "--no-compile", "--extra-index-url", f"{published_index}simple/",
         f"vertex-loadtest[pipelines]=={__version__}"]
    )  # fmt: skip
    return env


def _clean_environment() -> dict[str, str]:
    """This process's environment without anything that would make the installed copy find the sources
    or compile against another registry."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("VERTEX_LOADTEST_")
    }


def test_installed_package_imports_its_ops_loads_every_spec_and_compiles_what_it_ships(
    installed_env, tmp_path
):
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path

        import kfp.components
        import vertex_loadtest
        from kfp.dsl.base_component import BaseComponent

        ops = {{name: isinstance(getattr(vertex_loadtest, name), BaseComponent)
               for name in vertex_loadtest.__all__ if name != "__version__"}}
        root = Path(vertex_loadtest.__file__).parent
        loaded = {{}}
        for pattern in {SPEC_GLOBS!r}:
            for spec in sorted(root.glob(pattern)):
                loaded[str(spec.relative_to(root))] = kfp.components.load_component_from_file(str(spec)).name
        print(json.dumps({{"version": vertex_loadtest.__version__, "root": str(root), "ops": ops,
                          "loaded": loaded, "heavy": sorted({{"locust", "gevent"}} & set(sys.modules))}}))
    """)
    bin_dir = images.venv_bin(installed_env)
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_clean_environment(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    assert found["version"] == __version__
    root = Path(found["root"])
    assert root.is_relative_to(images.site_packages(installed_env)), "imported the installed copy"
    assert len(found["ops"]) == 3
    assert all(found["ops"].values()), f"not KFP components: {found['ops']}"
    assert sorted(found["loaded"]) == CHECKED_IN_SPECS
    assert all(found["loaded"].values())
    assert found["heavy"] == []

    compiled = tmp_path / "compiled"
    compile_run = subprocess.run(
        [str(bin_dir / "vertex-loadtest"), "compile", "--output-root", str(compiled)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_clean_environment(),
    )
    assert compile_run.returncode == 0, compile_run.stderr[-3000:]
    written = sorted(str(path.relative_to(compiled)) for path in compiled.rglob("*.yaml"))
    assert written == CHECKED_IN_SPECS
    for relative in written:
        assert (compiled / relative).read_text() == (root / relative).read_text(), (
            f"the installed copy compiles {relative} differently from the spec it ships"
        )
