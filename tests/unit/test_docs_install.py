"""The install instructions name the repository a release publishes to and this version, and the
documented component that installs the package when it starts compiles to the pip command it claims."""

import re
import tomllib

import yaml
from kfp import compiler
from scripts import images

from vertex_loadtest._version import __version__

PAGES = [images.REPO_ROOT / name for name in ("README.md", "docs/quickstart.md", "docs/installing.md")]
PYPROJECT = tomllib.loads((images.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SIMPLE_INDEX = PYPROJECT["project"]["urls"]["Package index"] + "simple/"
_TESTED_BLOCK = re.compile(r"<!-- tested: component-on-ours -->\n```python\n(.*?)```", re.DOTALL)


def test_install_lines_pin_this_version_from_the_published_index():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        pins = re.findall(r"vertex-loadtest(?:\[[a-z,]+\])?==([0-9][^\s\"'`]*)", text)
        pins += re.findall(r"vertex-loadtest/images/[a-z-]+:([^\s\"'`]+)", text)
        assert pins, f"{page.name} has no pinned install line"
        assert set(pins) == {__version__}, f"{page.name} pins {set(pins)}, not {__version__}"
        indexes = set(re.findall(r"https://[a-z0-9-]+-python\.pkg\.dev/[^\s\"'`]*", text))
        assert indexes == {SIMPLE_INDEX}, f"{page.name} names {indexes}, not {SIMPLE_INDEX}"


def test_documented_component_installs_the_package_from_the_index_with_tls_verified(tmp_path):
    (source,) = _TESTED_BLOCK.findall((images.REPO_ROOT / "docs/installing.md").read_text(encoding="utf-8"))
    namespace: dict = {}
    exec(compile(source, "docs/installing.md", "exec"), namespace)
    spec_path = tmp_path / "component.yaml"
    compiler.Compiler().compile(namespace["load_test_summary"], str(spec_path))
    (executor,) = yaml.safe_load(spec_path.read_text())["deploymentSpec"]["executors"].values()
    command = " ".join(executor["container"]["command"])
    assert f"--index-url https://pypi.org/simple/ --extra-index-url {SIMPLE_INDEX}" in command
    assert f"'vertex-loadtest=={__version__}'" in command
    assert "--trusted-host" not in command
