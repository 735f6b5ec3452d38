"""Releases pin every image by digest through VERTEX_LOADTEST_IMAGE_DIGESTS; tags otherwise."""

import json

import pytest

from vertex_loadtest import _images
from vertex_loadtest._version import __version__
from vertex_loadtest.errors import BadInput

DIGEST = "sha256:" + "ab" * 32


def _write(tmp_path, content):
    path = tmp_path / "digests.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_without_digests_every_image_is_tagged_with_the_version(monkeypatch):
    monkeypatch.delenv(_images.DIGESTS_ENV, raising=False)
    monkeypatch.delenv(_images.REGISTRY_ENV, raising=False)
    for image in _images.IMAGES:
        assert _images.image_for(image) == f"{_images.DEFAULT_REGISTRY}/{image}:{__version__}"


def test_digests_file_pins_every_image_under_the_chosen_registry(tmp_path, monkeypatch):
    digests = {image: "sha256:" + f"{index:x}" * 64 for index, image in enumerate(_images.IMAGES, start=1)}
    monkeypatch.setenv(_images.DIGESTS_ENV, str(_write(tmp_path, digests)))
    monkeypatch.setenv(_images.REGISTRY_ENV, "europe-west4-docker.pkg.dev/acme/mirror/")
    for image in _images.IMAGES:
        assert _images.image_for(image) == f"europe-west4-docker.pkg.dev/acme/mirror/{image}@{digests[image]}"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not JSON"),
        (["sha256:" + "0" * 64], "expected {image"),
        ({"latency-gate": DIGEST}, "pins no digest for"),
        ({image: "sha256:short" for image in _images.IMAGES}, "malformed digests"),
        ({image: DIGEST.upper() for image in _images.IMAGES}, "malformed digests"),
    ],
)
def test_a_bad_digests_file_is_an_error_naming_the_setting(tmp_path, monkeypatch, content, complaint):
    monkeypatch.setenv(_images.DIGESTS_ENV, str(_write(tmp_path, content)))
    with pytest.raises(BadInput, match=complaint) as raised:
        _images.image_for(_images.LATENCY_GATE)
    assert _images.DIGESTS_ENV in str(raised.value)


def test_a_missing_digests_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(_images.DIGESTS_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(BadInput, match="cannot be read"):
        _images.image_for(_images.ENDPOINT_CLEANUP)


def test_unknown_image_keeps_raising_value_error():
    with pytest.raises(ValueError, match="unknown component image"):
        _images.image_for("no-such-image")
