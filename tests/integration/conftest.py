"""Fixtures shared by the integration tests: the sdist and the wheel, built once per session."""

from pathlib import Path

import pytest
from scripts import images


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as the release builds them (``images.build_dist``); the build's
    output is in ``images.BUILD_LOG`` beside the directory."""
    return images.build_dist(tmp_path_factory.mktemp("package"))
