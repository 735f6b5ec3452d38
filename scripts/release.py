"""Release steps of ``cloudbuild.yaml`` that are easier to test in Python than in shell.

``python -m scripts.release digests DIR OUTPUT``
    Reads ``DIR/<image>.digest`` files (each holding ``docker inspect``'s ``registry/image@sha256:...``
    after the push) and writes the JSON that ``VERTEX_LOADTEST_IMAGE_DIGESTS`` points to. Fails unless
    every image in ``vertex_loadtest._images.IMAGES`` is there, pushed to the expected registry.

``python -m scripts.release verify ROOT``
    Checks that every spec listed in ``compile.SPECS`` was compiled under ``ROOT`` and that each of its
    containers names one of our images, in the expected registry, pinned by digest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from scripts import specs

sys.path.insert(0, str(specs.REPO_ROOT / "components"))
from vertex_loadtest._images import DEFAULT_REGISTRY, IMAGES, REGISTRY_ENV

_REPO_DIGEST = re.compile(r"^(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")


class ReleaseError(Exception):
    """A release artifact is not what the release must publish."""


def registry() -> str:
    return os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY).rstrip("/")


def collect_digests(directory: Path, expected_registry: str) -> dict[str, str]:
    """Returns {image: "sha256:..."} from ``directory/<image>.digest`` files, for every image."""
    digests = {}
    problems = []
    for image in IMAGES:
        path = directory / f"{image}.digest"
        if not path.exists():
            problems.append(f"{path} is missing: was {image} built and pushed?")
            continue
        reference = path.read_text(encoding="utf-8").strip()
        match = _REPO_DIGEST.match(reference)
        if not match:
            problems.append(f"{path} holds {reference!r}, not 'registry/{image}@sha256:<64 hex>'")
        elif match.group("repository") != f"{expected_registry}/{image}":
            problems.append(f"{path}: {reference} was not pushed to {expected_registry}/{image}")
        else:
            digests[image] = match.group("digest")
    if problems:
        raise ReleaseError("; ".join(problems))
    return digests


def verify_specs(root: Path, expected_registry: str) -> list[str]:
    """Returns one line per checked container; raises ReleaseError listing every unpinned one.

    Our containers (lightweight components and our images) must name ``expected_registry`` and a
    digest; third-party containers must at least name a fixed version (a tag other than ``latest``,
    or a digest) and are listed as such.
    """
    checked, problems = [], []
    for spec in specs.load_specs(root):
        if spec.document is None:
            problems.append(f"{spec.relative_path} was not compiled under {root}")
            continue
        for executor in specs.executors(spec):
            where = f"{spec.relative_path} {executor.name}"
            name = specs.image_name(executor.image)
            if specs.is_ours(executor):
                if name in IMAGES and executor.image.startswith(f"{expected_registry}/{name}@sha256:"):
                    checked.append(f"{where} {executor.image}")
                else:
                    wanted = f"{expected_registry}/<{'|'.join(IMAGES)}>@sha256:..."
                    problems.append(f"{where} runs {executor.image}, not {wanted}")
            elif "@sha256:" in executor.image or specs.image_tag(executor.image) not in (None, "latest"):
                checked.append(f"{where} {executor.image} (third-party, fixed version)")
            else:
                problems.append(f"{where} runs third-party {executor.image} without a fixed version")
    if problems:
        raise ReleaseError("; ".join(problems))
    return checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.release", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    digests = sub.add_parser("digests", help="write the digests JSON from DIR/<image>.digest files")
    digests.add_argument("directory", type=Path)
    digests.add_argument("output", type=Path)
    verify = sub.add_parser("verify", help="check every compiled spec under ROOT pins our images by digest")
    verify.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "digests":
            found = collect_digests(args.directory, registry())
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(f"{args.output}: {json.dumps(found)}")
        else:
            for line in verify_specs(args.root, registry()):
                print(line)
    except ReleaseError as error:
        print(f"release {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
