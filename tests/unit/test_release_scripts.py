"""scripts.release: the digests JSON a release compiles with, the check that specs are pinned, the check
of the sdist and the wheel, and the refusal of a version the Python repository already has."""

import base64
import json
import os
import subprocess
import sys

import keyring
import keyring.backend
import keyring.credentials
import pytest
from scripts import images, release, specs

from tests.loopback_http import loopback_server
from vertex_loadtest._images import DIGESTS_ENV, IMAGES, REGISTRY_ENV
from vertex_loadtest._version import __version__

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


def _touch(directory, *names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"")
    return directory


def test_dist_check_accepts_one_sdist_and_one_wheel_of_this_version(tmp_path):
    _touch(
        tmp_path, f"vertex_loadtest-{__version__}-py3-none-any.whl", f"vertex_loadtest-{__version__}.tar.gz"
    )
    assert len(release.check_dist(tmp_path)) == 2


def test_dist_check_names_a_stale_wheel_a_missing_sdist_and_a_foreign_file(tmp_path):
    _touch(
        tmp_path,
        f"vertex_loadtest-{__version__}-py3-none-any.whl",
        "vertex_loadtest-0.0.1-py3-none-any.whl",
        "other_package-1.0-py3-none-any.whl",
    )
    with pytest.raises(release.ReleaseError) as raised:
        release.check_dist(tmp_path)
    message = str(raised.value)
    assert f"vertex_loadtest-0.0.1-py3-none-any.whl is not a vertex-loadtest {__version__}" in message
    assert "other_package-1.0-py3-none-any.whl is not" in message
    assert "holds 3 wheels, not one" in message and "holds 0 sdists, not one" in message


def _simple_page(*filenames):
    links = "".join(f'<a href="../../packages/{name}#sha256=00">{name}</a>\n' for name in filenames)
    return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()


def test_published_versions_reads_the_simple_index_of_this_project_only():
    seen = []

    def index(request, _body):
        seen.append(request.path)
        return 200, _simple_page(
            "vertex_loadtest-0.1.0-py3-none-any.whl",
            "vertex-loadtest-0.1.0.tar.gz",
            "vertex_loadtest-0.2.0rc1.tar.gz",
            "other-9.9.9.tar.gz",
            "vertex_loadtest-0.3.0.zip",
        )

    with loopback_server(index, content_type="text/html") as url:
        assert release.published_versions(url + "/") == {"0.1.0", "0.2.0rc1"}
        with pytest.raises(release.ReleaseError, match=r"0\.1\.0 is already published"):
            release.check_unpublished(url, version="0.1.0")
        release.check_unpublished(url, version="0.2.0")
    assert seen[0] == "/simple/vertex-loadtest/"


def test_an_unknown_project_is_unpublished_but_a_refusal_fails_the_release():
    with loopback_server(lambda _request, _body: (404, b"not found")) as url:
        assert release.published_versions(url) == set()
    denied = pytest.raises(release.ReleaseError, match=r"HTTP 403: cannot tell .*artifactregistry")
    with loopback_server(lambda _request, _body: (403, b"denied")) as url, denied:
        release.check_unpublished(url)


class _TokenKeyring(keyring.backend.KeyringBackend):
    """What the Artifact Registry backend answers for a *.pkg.dev URL: an access token as password."""

    priority = 1

    def get_credential(self, service, username):
        return keyring.credentials.SimpleCredential("oauth2accesstoken", "secret-token")

    def get_password(self, service, username):
        return "secret-token"

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError


def test_the_index_is_read_with_the_keyring_backends_credential_and_the_token_stays_out_of_errors():
    headers = []

    def index(request, _body):
        headers.append(request.headers.get("Authorization"))
        return 401, b"token expired"

    previous = keyring.get_keyring()
    keyring.set_keyring(_TokenKeyring())
    try:
        with loopback_server(index) as url, pytest.raises(release.ReleaseError) as raised:
            release.check_unpublished(url)
    finally:
        keyring.set_keyring(previous)
    expected = "Basic " + base64.b64encode(b"oauth2accesstoken:secret-token").decode()
    assert headers == [expected]
    assert "secret-token" not in str(raised.value) and "HTTP 401" in str(raised.value)
