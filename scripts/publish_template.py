"""Uploads the pipeline template(s) of a release to an Artifact Registry Kubeflow Pipelines repository.

``python -m scripts.publish_template --host https://REGION-kfp.pkg.dev/PROJECT/REPO --root DIR
--tag 0.1.0 --tag latest`` uploads every pipeline spec listed in ``compile.SPECS`` (those with more than
one task) that was compiled under ``DIR`` (``vertex-loadtest compile --output-root DIR``), with
``kfp.registry.RegistryClient``. On an Artifact Registry host the client authenticates with
Application Default Credentials (the Cloud Build service account).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts import specs


def pipeline_templates(root: Path) -> list[Path]:
    """Returns the compiled pipeline templates under ``root``; raises when a listed one is missing."""
    found = []
    for spec in specs.load_specs(root):
        if spec.document is None:
            raise FileNotFoundError(f"{spec.path} is missing: run vertex-loadtest compile --output-root")
        if spec.is_pipeline:
            found.append(spec.path)
    return found


def publish(
    host: str, templates: Sequence[Path], tags: Sequence[str], auth: Any = None
) -> list[tuple[str, str]]:
    """Uploads each template with ``tags``; returns (package name, version) per template."""
    from kfp.registry import RegistryClient

    client = RegistryClient(host=host, auth=auth)
    return [client.upload_pipeline(file_name=str(path), tags=list(tags)) for path in templates]


def main(argv: Sequence[str] | None = None, auth: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.publish_template", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", required=True, help="https://REGION-kfp.pkg.dev/PROJECT/REPOSITORY")
    parser.add_argument("--root", type=Path, required=True, help="where the release's specs were compiled")
    parser.add_argument("--tag", action="append", required=True, help="tag to attach (repeatable)")
    args = parser.parse_args(argv)
    templates = pipeline_templates(args.root)
    if not templates:
        print("publish_template: error: compile.SPECS lists no pipeline template to publish", file=sys.stderr)
        return 1
    uploaded = publish(args.host, templates, args.tag, auth)
    for path, (package, version) in zip(templates, uploaded, strict=True):
        print(f"{path.name} -> {args.host}/{package} {version} tags {', '.join(args.tag)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
