"""Each image's exact install, reproduced in a fresh virtual environment (no Docker engine here).

The wheel is the one the release builds once and publishes (the session's ``dist_dir``: hash-pinned
build tools, no isolation); then, per image, its lock file is installed with ``--require-hashes`` and
the wheel with the image's extra and no index, as the Dockerfile does. From that environment the CLI
runs, every spec that names the image has its component source loaded and its runtime imports executed
(what KFP runs in the container), the forbidden distributions are absent and site-packages fits the
image's budget.
"""

import json
import os
import shutil
import subprocess
import textwrap

import pytest
from scripts import images, specs

from vertex_loadtest._images import IMAGES
from vertex_loadtest._version import __version__

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def wheel_dir(dist_dir, tmp_path_factory):
    """Only the wheel, as the Dockerfiles copy it (``COPY dist/*.whl /tmp/dist/``)."""
    wheels = tmp_path_factory.mktemp("wheel")
    for wheel in dist_dir.glob("*.whl"):
        shutil.copy2(wheel, wheels)
    return wheels


@pytest.fixture(scope="module", params=IMAGES)
def image_env(request, wheel_dir, tmp_path_factory):
    recipe = images.recipe(request.param)
    env = images.install_image_env(recipe, wheel_dir, tmp_path_factory.mktemp(request.param) / "venv")
    return recipe, env


def _run(venv, *args, **kwargs):
    command = [str(images.venv_bin(venv) / args[0]), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def test_one_wheel_is_built(wheel_dir):
    (wheel,) = wheel_dir.glob("*.whl")
    assert wheel.name.startswith(f"vertex_loadtest-{__version__}-")


def test_cli_runs_from_the_image(image_env):
    _recipe, env = image_env
    version = _run(env, "vertex-loadtest", "--version")
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    help_ = _run(env, "vertex-loadtest", "--help")
    assert help_.returncode == 0, help_.stderr
    check = _run(env, "pip", "check")
    assert check.returncode == 0, check.stdout


def test_components_named_on_the_image_load_and_import_their_runtime(image_env, tmp_path):
    recipe, env = image_env
    checked: list[str] = []
    loaded: set[str] = set()
    for spec in specs.load_specs():
        assert spec.document is not None, f"{spec.relative_path} is listed in compile.SPECS but not compiled"
        for executor in specs.executors(spec):
            if specs.image_name(executor.image) != recipe.image or executor.source is None:
                continue
            if executor.source in loaded:  # the same component inside the pipeline template
                checked.append(spec.relative_path)
                continue
            loaded.add(executor.source)
            # What the container runs: the spec's command writes the embedded source to
            # ephemeral_component.py and starts kfp.dsl.executor_main with _KFP_RUNTIME=true, which loads
            # it with kfp.dsl.utils.load_module and calls the function; its body then runs these imports.
            workdir = tmp_path / f"{len(loaded)}-{executor.name}"
            workdir.mkdir()
            (workdir / "ephemeral_component.py").write_text(executor.source, encoding="utf-8")
            script = textwrap.dedent(f"""
                from kfp.dsl import utils
                module = utils.load_module("ephemeral_component", {str(workdir)!r})
                assert callable(getattr(module, {executor.function!r}))
            """) + "\n".join(specs.body_imports(executor.source, executor.function))
            result = _run(
                env, "python", "-c", script, cwd=tmp_path, env={**os.environ, "_KFP_RUNTIME": "true"}
            )
            assert result.returncode == 0, f"{spec.relative_path} on {recipe.image}:\n{result.stderr[-3000:]}"
            checked.append(spec.relative_path)
    # The package and its public API import on every image (pipeline authors' import path).
    imports = "import json, sys, vertex_loadtest; print(json.dumps(sorted(sys.modules)))"
    result = _run(env, "python", "-c", imports)
    assert result.returncode == 0, result.stderr
    assert not {"locust", "gevent"} & set(json.loads(result.stdout))
    print(recipe.image, "runs", checked or "no compiled spec yet")


def test_image_carries_nothing_forbidden_and_fits_its_budget(image_env):
    recipe, env = image_env
    installed = images.installed_distributions(env)
    assert installed.get("vertex-loadtest") == __version__
    assert not set(images.FORBIDDEN.get(recipe.image, ())) & set(installed)
    size_mb = images.tree_size(images.site_packages(env)) / 1e6
    print(f"{recipe.image}: {size_mb:.1f} MB site-packages, {len(installed)} distributions")
    assert size_mb <= images.BUDGET_MB[recipe.image]
