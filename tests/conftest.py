"""Fixtures shared by every test directory: servers on loopback that stop by themselves."""

from collections.abc import Iterator

import pytest

from vertex_loadtest.ports import free_port
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator


@pytest.fixture
def prediction_server() -> Iterator[PredictionServer]:
    """A fast, healthy ``:predict`` server (2 ms per request)."""
    with PredictionServer(Behaviour(latency="2ms")) as server:
        yield server


@pytest.fixture
def gcs_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """gcp-storage-emulator on loopback, in memory, reached through STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    host = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    try:
        yield host
    finally:
        server.stop()


@pytest.fixture
def vertex_emulator() -> Iterator[VertexEmulator]:
    """The local Vertex AI emulator on loopback (instant operations; a test slows them as it needs)."""
    with VertexEmulator() as emulator:
        yield emulator
