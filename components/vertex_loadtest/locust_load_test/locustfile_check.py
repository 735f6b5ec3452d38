"""Checks a team's locustfile and explains why it cannot run: a syntax error (checked up front, in the
component's own process), or an exception raised while it is imported (found after Locust failed, by
importing it again in a child process with the same environment: the component's process never imports
locust or gevent, and a run that works pays nothing for the check).

The child (``python -m vertex_loadtest.locust_load_test.locustfile_check PATH REPORT``) imports locust,
then the locustfile as Locust does, and writes what it raised, at which line, to the REPORT file.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput

#: How long the child may take to import the locustfile.
IMPORT_TIMEOUT_S = 60
#: Import names whose pip package is named otherwise (the common ones).
PACKAGE_NAMES = {
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
}
IMAGE_DOCS = "docs/operations/images.md (Extra packages for a locustfile)"
#: ``from google.cloud import spanner`` without the package: an ImportError from a namespace package.
_FROM_NAMESPACE = re.compile(r"cannot import name '(\w+)' from '([\w.]+)' \(unknown location\)")


def check_syntax(path: Path, name: str) -> None:
    """Raises BadInput naming the line when the locustfile at ``path`` (named ``name``) does not compile."""
    try:
        compile(path.read_bytes(), name, "exec")
    except SyntaxError as error:
        raise BadInput(f"locustfile {name} has a syntax error at line {error.lineno}: {error.msg}") from None
    except ValueError as error:
        raise BadInput(f"locustfile {name} is not Python source: {error}") from None


def import_failure(path: Path, name: str, env: dict[str, str]) -> BadInput | None:
    """Imports the locustfile in a child process with ``env``, as Locust would.

    Args:
        path: The locustfile as Locust was given it.
        name: How the user named it (local path or ``gs://`` URI), for the message.
        env: The environment the Locust processes had.

    Returns:
        The error to report when importing it raises (naming the file, the line and the exception),
        or None when it imports cleanly (then Locust failed for another reason).
    """
    with tempfile.TemporaryDirectory(prefix="vertex-loadtest-check-") as work:
        report = Path(work) / "import.json"
        try:
            subprocess.run(
                [sys.executable, "-m", __name__, str(path), str(report)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=IMPORT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return BadInput(
                f"locustfile {name} took over {IMPORT_TIMEOUT_S}s to import: move slow work out of module "
                "code (into on_start, or a test_start listener)"
            )
        if not report.exists():
            return None
        found = json.loads(report.read_text(encoding="utf-8"))
    return BadInput(describe(found, name)) if found else None


def describe(found: dict[str, Any], name: str) -> str:
    """The message for an import failure as the child reported it."""
    where = f"locustfile {name} line {found['line']}" if found["line"] else f"locustfile {name}"
    code = f" (`{found['code']}`)" if found["code"] else ""
    raised = f"{found['exception']}: {found['message']}"
    if found["missing_module"]:
        package = package_for(found["missing_module"])
        return (
            f"{where}{code} imports {found['missing_module']}, which the load-test image lacks ({raised}): "
            f"build an image FROM ours that adds the package {package} (pip install {package}) and run "
            f"the load test on it; see {IMAGE_DOCS}"
        )
    hint = ""
    if found["exception"] == "KeyError" and "env" in found["code"]:
        hint = (
            ": an environment variable the Locust processes lack (the load test sets "
            "VERTEX_AI_ENDPOINT_HOST and VERTEX_AI_ENDPOINT_PATH)"
        )
    return f"{where}{code} raised {raised} while being imported{hint}"


def package_for(module: str) -> str:
    """The pip package that likely provides ``module`` (``google.cloud.bigquery``: google-cloud-bigquery)."""
    parts = module.split(".")
    if parts[:2] == ["google", "cloud"] and len(parts) > 2:
        return f"google-cloud-{parts[2]}"
    return PACKAGE_NAMES.get(parts[0], parts[0])


def _import_like_locust(path: str) -> dict[str, Any] | None:
    """Imports the locustfile as ``locust.util.load_locustfile`` does; returns what it raised, if anything."""
    import importlib.util

    import locust  # noqa: F401 - Locust's own import (and its gevent patches) comes first, as in Locust

    directory, filename = os.path.split(os.path.abspath(path))
    sys.path[:0] = [os.getcwd(), directory]
    module_name = os.path.splitext(filename)[0]
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except BaseException as error:  # whatever module code raises (even SystemExit) is the answer
        frames = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if os.path.abspath(frame.filename) == os.path.abspath(path)
        ]
        return _failure(error, frames)
    return None


def _failure(error: BaseException, frames: list[traceback.FrameSummary]) -> dict[str, Any]:
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if isinstance(error, ImportError) and (namespace := _FROM_NAMESPACE.search(str(error))):
        missing = f"{namespace[2]}.{namespace[1]}"
    return {
        "exception": type(error).__name__,
        "message": str(error),
        "line": frames[-1].lineno if frames else None,
        "code": (frames[-1].line or "").strip() if frames else "",
        "missing_module": missing,
    }


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(_import_like_locust(sys.argv[1])), encoding="utf-8")
    os._exit(0)  # module code may have started threads or greenlets that would keep the child alive
