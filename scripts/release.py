"""Release steps of ``cloudbuild.yaml`` that are easier to test in Python than in shell.

``python -m scripts.release digests DIR OUTPUT``
    Reads ``DIR/<image>.digest`` files (each holding ``docker inspect``'s ``registry/image@sha256:...``
    after the push) and writes the JSON that ``VERTEX_LOADTEST_IMAGE_DIGESTS`` points to. Fails unless
    every image in ``vertex_loadtest._images.IMAGES`` is there, pushed to the expected registry.

``python -m scripts.release verify ROOT``
    Checks that every spec listed in ``compile.SPECS`` was compiled under ``ROOT`` and that each of its
    containers names one of our images, in the expected registry, pinned by digest.

``python -m scripts.release dist DIR``
    Checks that ``DIR`` holds exactly one sdist and one wheel, both of this package version: what the
    release uploads and what every image installs.

``python -m scripts.release unpublished INDEX_URL``
    Fails if the Python repository at ``INDEX_URL`` (``https://LOCATION-python.pkg.dev/PROJECT/REPO/``)
    already has this package version: a published version is never replaced. Reads the repository's
    simple index (PEP 503), authenticated by whatever keyring backend is installed (the Artifact
    Registry one in the release); a missing project is an empty repository, any other HTTP error fails.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from scripts import specs

sys.path.insert(0, str(specs.REPO_ROOT / "components"))
from vertex_loadtest._images import DEFAULT_REGISTRY, IMAGES, REGISTRY_ENV
from vertex_loadtest._version import __version__

PROJECT = "vertex-loadtest"
_HREF = re.compile(r"""href=["']([^"'#]+)""", re.IGNORECASE)

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


def distribution_version(filename: str) -> tuple[str, str] | None:
    """Returns (normalized project, version) of a wheel or sdist file name, or None for other files."""
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        elif filename.endswith(".tar.gz"):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return name, str(version)


def check_dist(directory: Path, version: str = __version__) -> list[Path]:
    """Returns the sdist and the wheel in ``directory``; raises ReleaseError unless there is exactly
    one of each, both of ``version``."""
    files = sorted(path for path in directory.iterdir() if path.is_file())
    found = {path: distribution_version(path.name) for path in files}
    problems = [
        f"{path.name} is not a {PROJECT} {version} sdist or wheel"
        for path, parsed in found.items()
        if parsed != (PROJECT, version)
    ]
    for kind, suffix in (("sdist", ".tar.gz"), ("wheel", ".whl")):
        count = sum(path.name.endswith(suffix) for path in files)
        if count != 1:
            problems.append(
                f"{directory} holds {count} {kind}s, not one: build them once into an empty directory"
            )
    if problems:
        raise ReleaseError("; ".join(problems))
    return files


def _basic_auth(url: str) -> str | None:
    """Returns an Authorization header value from the installed keyring backends, if one knows ``url``."""
    try:
        import keyring
    except ImportError:
        return None
    credential = keyring.get_credential(url, None)
    if credential is None:
        return None
    pair = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def published_versions(index_url: str, project: str = PROJECT) -> set[str]:
    """Returns every version of ``project`` with a file in the simple index under ``index_url``."""
    url = f"{index_url.rstrip('/')}/simple/{canonicalize_name(project)}/"
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    authorization = _basic_auth(url)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            page = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        error.close()  # the error holds the response's socket
        if error.code == 404:
            return set()
        raise ReleaseError(
            f"{url} answered HTTP {error.code}: cannot tell whether {project} is already published "
            "(does the build's service account have roles/artifactregistry.writer on the repository?)"
        ) from error
    except urllib.error.URLError as error:
        raise ReleaseError(f"{url} is unreachable ({error.reason}): check the repository URL") from error
    versions = set()
    for href in _HREF.findall(page):
        parsed = distribution_version(href.rsplit("/", 1)[-1])
        if parsed and parsed[0] == canonicalize_name(project):
            versions.add(parsed[1])
    return versions


def check_unpublished(index_url: str, version: str = __version__) -> None:
    """Raises ReleaseError if ``version`` of the package is already in the repository at ``index_url``."""
    if version in published_versions(index_url):
        raise ReleaseError(
            f"{PROJECT} {version} is already published to {index_url}: a published version is never "
            "replaced; release a new version (bump _version.py and _VERSION in cloudbuild.yaml)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.release", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    digests = sub.add_parser("digests", help="write the digests JSON from DIR/<image>.digest files")
    digests.add_argument("directory", type=Path)
    digests.add_argument("output", type=Path)
    verify = sub.add_parser("verify", help="check every compiled spec under ROOT pins our images by digest")
    verify.add_argument("root", type=Path)
    dist = sub.add_parser("dist", help="check DIR holds one sdist and one wheel of this version")
    dist.add_argument("directory", type=Path)
    unpublished = sub.add_parser("unpublished", help="fail if this version is already in INDEX_URL")
    unpublished.add_argument("index_url")
    args = parser.parse_args(argv)
    try:
        if args.command == "digests":
            found = collect_digests(args.directory, registry())
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(f"{args.output}: {json.dumps(found)}")
        elif args.command == "verify":
            for line in verify_specs(args.root, registry()):
                print(line)
        elif args.command == "dist":
            print("\n".join(str(path) for path in check_dist(args.directory)))
        else:
            check_unpublished(args.index_url)
            print(f"{PROJECT} {__version__} is not in {args.index_url} yet")
    except ReleaseError as error:
        print(f"release {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
