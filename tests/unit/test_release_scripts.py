"""scripts.release: the digests JSON a release compiles with, and the check that specs are pinned."""

import json
import os
import subprocess
import sys

import pytest
from scripts import images, release, specs

from vertex_loadtest._images import DIGESTS_ENV, IMAGES, REGISTRY_ENV

REGISTRY = "europe-west4-docker.pkg.dev/acme/mirror"


def _digest(index):
    return "sha256:" + f"{index:02x}" * 32


def _write_digest_files(directory, registry=REGISTRY):
    directory.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(IMAGES):
        (directory / f"{image}.digest").write_text(f"{registry}/{image}@{_digest(index)}\n")


def test_collects_one_digest_per_image(tmp_path):
    _write_digest_files(tmp_path)
    assert release.collect_digests(tmp_path, REGISTRY) == {
        image: _digest(i) for i, image in enumerate(IMAGES)
    }


def test_a_missing_image_or_a_foreign_registry_or_a_tag_fails_the_release(tmp_path):
    _write_digest_files(tmp_path)
    (tmp_path / f"{IMAGES[0]}.digest").unlink()
    (tmp_path / f"{IMAGES[1]}.digest").write_text(f"docker.io/someone/{IMAGES[1]}@{_digest(1)}")
    (tmp_path / f"{IMAGES[2]}.digest").write_text(f"{REGISTRY}/{IMAGES[2]}:0.1.0")
    with pytest.raises(release.ReleaseError) as raised:
        release.collect_digests(tmp_path, REGISTRY)
    message = str(raised.value)
    assert f"{IMAGES[0]}.digest is missing" in message
    assert "was not pushed to" in message
    assert "not 'registry/" in message


def _compile(root, **env):
    """Compiles every spec the way the release does: a fresh process with the release's settings."""
    result = subprocess.run(
        [sys.executable, "-m", "vertex_loadtest.cli", "compile", "--output-root", str(root)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=images.REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_release_compile_pins_every_spec_by_digest_and_verify_accepts_it(tmp_path, monkeypatch):
    digests = tmp_path / "image-digests.json"
    _write_digest_files(tmp_path / "digests")
    monkeypatch.setenv(REGISTRY_ENV, REGISTRY)
    assert release.main(["digests", str(tmp_path / "digests"), str(digests)]) == 0
    assert json.loads(digests.read_text()) == {image: _digest(i) for i, image in enumerate(IMAGES)}
    _compile(tmp_path / "specs", **{REGISTRY_ENV: REGISTRY, DIGESTS_ENV: str(digests)})
    checked = release.verify_specs(tmp_path / "specs", REGISTRY)
    compiled = specs.load_specs(tmp_path / "specs")
    ours = [executor for spec in compiled for executor in specs.executors(spec) if specs.is_ours(executor)]
    assert len(ours) >= len(IMAGES)
    pinned = [line for line in checked if "third-party" not in line]
    assert len(pinned) == len(ours)
    assert all(f" {REGISTRY}/" in line and "@sha256:" in line for line in pinned)
    assert {specs.image_name(executor.image) for executor in ours} == set(IMAGES)


def test_verify_rejects_specs_compiled_with_tags(tmp_path):
    _compile(tmp_path / "specs")
    with pytest.raises(release.ReleaseError, match=r"not .*@sha256"):
        release.verify_specs(tmp_path / "specs", release.registry())


def test_verify_rejects_a_listed_spec_that_was_not_compiled(tmp_path):
    with pytest.raises(release.ReleaseError, match="was not compiled"):
        release.verify_specs(tmp_path / "empty", REGISTRY)
