"""cloudbuild.yaml is a valid Cloud Build config that releases exactly what the package defines."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from google.cloud.devtools import cloudbuild_v1
from google.protobuf import json_format
from packaging.requirements import Requirement
from scripts import images, specs

from vertex_loadtest._images import DEFAULT_REGISTRY, IMAGES
from vertex_loadtest._version import __version__

CLOUDBUILD = images.REPO_ROOT / "cloudbuild.yaml"
CONFIG = yaml.safe_load(CLOUDBUILD.read_text(encoding="utf-8"))
STEPS = {step["id"]: step for step in CONFIG["steps"]}
SUBS = CONFIG["substitutions"]
REGISTRY = "${_IMAGE_LOCATION}-docker.pkg.dev/${PROJECT_ID}/${_IMAGE_REPO}"
PYTHON_INDEX = "https://${_PYTHON_LOCATION}-python.pkg.dev/${PROJECT_ID}/${_PYTHON_REPO}/"
PYPROJECT = tomllib.loads((images.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
BUILTIN = {
    "PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "COMMIT_SHA", "SHORT_SHA", "REVISION_ID",
    "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
}  # fmt: skip
_SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _build_steps():
    return {step_id: step for step_id, step in STEPS.items() if step["args"][0] == "build"}


def _flag(step, name):
    return [arg.split("=", 1)[1] for arg in step["args"] if arg.startswith(f"--{name}=")]


def test_parses_into_cloud_builds_build_message():
    build = cloudbuild_v1.Build.from_json(json.dumps(CONFIG))
    assert len(build.steps) == len(CONFIG["steps"])
    assert build.substitutions["_VERSION"] == __version__


def test_a_misspelled_field_would_fail_the_parse():
    broken = json.loads(json.dumps(CONFIG))
    broken["steps"][0]["waitfor"] = ["-"]
    with pytest.raises(json_format.ParseError, match="waitfor"):
        cloudbuild_v1.Build.from_json(json.dumps(broken))


def test_release_version_is_the_package_version():
    assert SUBS["_VERSION"] == __version__
    assert tomllib.loads((images.REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"][
        "version"
    ] == {"attr": "vertex_loadtest._version.__version__"}


def test_every_substitution_used_is_defined_and_every_defined_one_used():
    body = yaml.safe_dump({key: value for key, value in CONFIG.items() if key != "substitutions"})
    used = {a or b for a, b in (m.groups() for m in _SUBSTITUTION.finditer(body)) if a or b}
    assert used - BUILTIN <= set(SUBS), used - BUILTIN - set(SUBS)
    assert set(SUBS) <= used, f"declared but unused (Cloud Build rejects them): {set(SUBS) - used}"
    assert all(key.startswith("_") for key in SUBS)
    assert {"SHORT_SHA", "PROJECT_ID", "_VERSION"} <= used


def _with_defaults(text):
    text = text.replace("${PROJECT_ID}", DEFAULT_REGISTRY.split("/")[1])
    for key, value in SUBS.items():
        text = text.replace("${" + key + "}", value)
    return text


def test_default_substitutions_name_the_published_registry_and_package_index():
    assert _with_defaults(REGISTRY) == DEFAULT_REGISTRY
    assert _with_defaults(PYTHON_INDEX) == PYPROJECT["project"]["urls"]["Package index"]


def _script(step_id):
    return " ".join(STEPS[step_id]["args"][-1].replace("\\\n", " ").split())


def test_the_package_is_built_once_checked_and_refused_if_published_before_any_image_builds():
    package = STEPS["package"]
    assert package["waitFor"] == ["test"]
    script = _script("package")
    lock = str(images.BUILD_LOCK.relative_to(images.REPO_ROOT))
    # the hash-pinned build tools only, then one build of both files (what images.build_dist runs)
    assert f"/workspace/build-venv/bin/{' '.join(images.LOCK_INSTALL)} {lock}" in script
    assert f"/workspace/build-venv/bin/{' '.join(images.DIST_BUILD)} {images.DIST_DIR} ." in script
    assert f"scripts.release dist {images.DIST_DIR}" in script
    assert f"twine check --strict {images.DIST_DIR}/*" in script
    assert f"scripts.release unpublished {PYTHON_INDEX}" in script
    assert script.index("twine check") < script.index("scripts.release unpublished")


def test_the_package_is_uploaded_after_the_pinned_specs_compile_to_the_same_repository():
    assert STEPS["publish-package"]["waitFor"] == ["compile"]
    script = _script("publish-package")
    assert f"twine upload --non-interactive --repository-url {PYTHON_INDEX} {images.DIST_DIR}/*" in script
    assert "--skip-existing" not in script, "a published version is refused, never silently skipped"


def test_the_release_venv_has_the_package_tools_and_the_artifact_registry_keyring_backend():
    # /workspace/.venv is `make test`'s environment: the dev extra
    dev = {Requirement(text).name for text in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert {"build", "twine", "keyrings.google-artifactregistry-auth"} <= dev
    assert "/workspace/.venv/bin/twine" in _script("package") + _script("publish-package")


def test_every_image_is_built_in_parallel_from_its_dockerfile_with_version_and_commit_tags():
    builds = _build_steps()
    built = {}
    for step_id, step in builds.items():
        (dockerfile,) = _flag(step, "file")
        assert (images.REPO_ROOT / dockerfile).is_file(), (
            f"{step_id} builds {dockerfile}, which does not exist"
        )
        image = Path(dockerfile).parent.name
        assert sorted(_flag(step, "tag")) == sorted(
            [f"{REGISTRY}/{image}:${{_VERSION}}", f"{REGISTRY}/{image}:${{SHORT_SHA}}"]
        )
        assert step["args"][-1] == ".", "the build context is the repository root"
        assert step["waitFor"] == ["package"], "images build in parallel, from the one wheel"
        built[image] = step_id
    assert set(built) == set(IMAGES)


def test_every_built_image_is_pushed_then_pinned_by_digest_before_compiling():
    pushes = {step_id: step for step_id, step in STEPS.items() if step["args"][0] == "push"}
    pushed = {}
    for step_id, step in pushes.items():
        assert step["args"][1] == "--all-tags"
        image = step["args"][2].rsplit("/", 1)[1]
        assert step["args"][2] == f"{REGISTRY}/{image}"
        (build_id,) = step["waitFor"]
        assert _flag(STEPS[build_id], "file") == [f"containers/{image}/Dockerfile"]
        pushed[image] = step_id
    assert set(pushed) == set(IMAGES)
    assert set(STEPS["digests"]["waitFor"]) == set(pushed.values())
    assert STEPS["compile"]["waitFor"] == ["digests"]
    compile_env = dict(entry.split("=", 1) for entry in STEPS["compile"]["env"])
    assert compile_env["VERTEX_LOADTEST_IMAGE_REGISTRY"] == REGISTRY
    assert "VERTEX_LOADTEST_IMAGE_DIGESTS" in compile_env
    script = STEPS["compile"]["args"][-1]
    assert "scripts.release digests" in script and "scripts.release verify" in script
    assert "vertex-loadtest compile --output-root" in script
    assert sorted(CONFIG["images"]) == sorted(f"{REGISTRY}/{image}:${{_VERSION}}" for image in IMAGES)


def test_tests_compile_with_the_default_registry():
    # A registry or digests override in the test step would break the checked-in-spec comparison.
    assert "env" not in CONFIG.get("options", {}) or not any(
        entry.startswith("VERTEX_LOADTEST_") for entry in CONFIG["options"]["env"]
    )
    assert "env" not in STEPS["test"]


def test_publishing_waits_for_the_pinned_specs_and_tags_version_and_latest():
    assert STEPS["publish-specs"]["waitFor"] == ["compile"]
    assert "gs://${_SPEC_BUCKET}/vertex-loadtest/${_VERSION}" in STEPS["publish-specs"]["args"][-1]
    template = STEPS["publish-template"]
    assert template["waitFor"] == ["compile"]
    assert template["args"][:2] == ["-m", "scripts.publish_template"]
    assert _flag(template, "tag") == ["${_VERSION}", "latest"]
    assert _flag(template, "host") == ["https://${_REGION}-kfp.pkg.dev/${PROJECT_ID}/${_KFP_REPO}"]


def test_every_script_a_step_runs_exists():
    modules = set(re.findall(r"\bscripts\.\w+", yaml.safe_dump(CONFIG["steps"])))
    assert {"scripts.release", "scripts.publish_template"} <= modules
    for module in modules:
        assert (images.REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_every_component_spec_names_an_image_the_release_builds():
    built = {Path(_flag(step, "file")[0]).parent.name for step in _build_steps().values()}
    ours = 0
    for spec in specs.load_specs():
        assert spec.document is not None, f"{spec.relative_path} is in compile.SPECS but not compiled"
        for executor in specs.executors(spec):
            where = f"{spec.relative_path} {executor.name} runs {executor.image}"
            if specs.is_ours(executor):
                assert (
                    executor.image == f"{DEFAULT_REGISTRY}/{specs.image_name(executor.image)}:{__version__}"
                ), where
                assert specs.image_name(executor.image) in built, where
                ours += 1
            else:  # third-party containers (GCPC ops in the reference pipeline): a fixed version
                assert (
                    specs.image_tag(executor.image) not in (None, "latest") or "@sha256:" in executor.image
                ), where
    assert ours >= len(IMAGES)
