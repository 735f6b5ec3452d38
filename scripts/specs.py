"""Reads the compiled specs listed in ``vertex_loadtest.compile.SPECS``: what the release, the image
tests and the documentation generator need to know about each one, taken from the YAML itself.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "components" / "vertex_loadtest"


@dataclass(frozen=True)
class Spec:
    """One entry of ``compile.SPECS`` and its compiled YAML (``None`` when not compiled yet)."""

    module: str
    attribute: str
    relative_path: str
    path: Path
    document: dict[str, Any] | None

    @property
    def is_pipeline(self) -> bool:
        """True for a pipeline template (published as one), False for a single component.

        Templates live under ``pipelines/``; a template may hold a single task (``sweep_orphans``).
        """
        return self.relative_path.startswith("pipelines/")

    @property
    def name(self) -> str:
        return str(((self.document or {}).get("pipelineInfo") or {}).get("name", self.attribute))


@dataclass(frozen=True)
class Executor:
    """A container a spec runs: its image and, for a lightweight component, its Python source.

    Importer nodes run no container and are not listed."""

    name: str
    image: str
    source: str | None
    function: str | None


def load_specs(package_dir: Path = PACKAGE_DIR) -> list[Spec]:
    """Returns every spec ``compile.SPECS`` lists, read from under ``package_dir``."""
    sys.path.insert(0, str(REPO_ROOT / "components"))
    try:
        compile_module = importlib.import_module("vertex_loadtest.compile")
    finally:
        sys.path.pop(0)
    found = []
    for module, attribute, relative_path in compile_module.SPECS:
        path = package_dir / relative_path
        document = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        found.append(Spec(module, attribute, relative_path, path, document))
    return found


def executors(spec: Spec) -> list[Executor]:
    """Returns the containers a spec runs, in the spec's order."""
    found = []
    for name, executor in ((spec.document or {}).get("deploymentSpec", {}).get("executors") or {}).items():
        container = executor.get("container")
        if not container:  # an importer: KFP's own driver, no image
            continue
        command = list(container.get("command") or [])
        args = list(container.get("args") or [])
        source = function = None
        if "--function_to_execute" in args and command:
            source = command[-1]
            function = args[args.index("--function_to_execute") + 1]
        found.append(Executor(name, str(container.get("image", "")), source, function))
    return found


def is_ours(executor: Executor) -> bool:
    """True for a container that must run one of our images: a lightweight Python component (KFP
    runs its function on its base image) or one naming one of our images. Other containers (e.g.
    google-cloud-pipeline-components' ops in the reference pipeline) are third-party."""
    sys.path.insert(0, str(REPO_ROOT / "components"))
    try:
        from vertex_loadtest._images import IMAGES
    finally:
        sys.path.pop(0)
    return executor.source is not None or image_name(executor.image) in IMAGES


def image_name(reference: str) -> str:
    """Returns the image name: ``reg/proj/repo/latency-gate@sha256:..`` -> ``latency-gate``."""
    without_digest = reference.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def image_tag(reference: str) -> str | None:
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def body_imports(source: str, function: str) -> list[str]:
    """Returns the import statements inside ``function``'s body: what the component imports at run time."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return [
                ast.unparse(inner)
                for inner in ast.walk(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            ]
    raise ValueError(f"the spec's source defines no function {function!r}")
