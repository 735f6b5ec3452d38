"""The package as pipeline authors import it, and the specs as teams load them."""

import subprocess
import sys

import yaml

import vertex_loadtest
from vertex_loadtest import _images, compile


def test_importing_the_package_imports_neither_locust_nor_gevent():
    code = (
        "import sys, vertex_loadtest; "
        "heavy = ('locust', 'gevent', 'geventhttpclient'); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_public_api_is_exactly_the_three_ops_and_the_version():
    assert sorted(vertex_loadtest.__all__) == [
        "EndpointCleanupOp",
        "LatencyGateOp",
        "LocustLoadTestOp",
        "__version__",
    ]
    for name in vertex_loadtest.__all__:
        assert getattr(vertex_loadtest, name) is not None
    assert vertex_loadtest.LocustLoadTestOp.name == "locust-load-test"


def test_checked_in_specs_match_a_fresh_compile(tmp_path):
    written = compile.compile_all(tmp_path)
    assert len(written) == len(compile.SPECS)
    for path in written:
        checked_in = compile.PACKAGE_DIR / path.relative_to(tmp_path)
        assert checked_in.exists(), f"{checked_in} is missing: run make compile"
        assert checked_in.read_text() == path.read_text(), f"{checked_in} is stale: run make compile"


def test_every_spec_runs_on_this_versions_image():
    for _, _, relative in compile.SPECS:
        for document in yaml.safe_load_all((compile.PACKAGE_DIR / relative).read_text()):
            for executor in document.get("deploymentSpec", {}).get("executors", {}).values():
                image = executor.get("container", {}).get("image", "")  # importers have no container
                if image.startswith(_images.DEFAULT_REGISTRY):
                    assert image.endswith(f":{vertex_loadtest.__version__}") or "@sha256:" in image, image
