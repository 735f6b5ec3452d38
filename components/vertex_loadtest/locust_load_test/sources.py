"""Fetching a locustfile or payload file: a local path, a ``/gcs/`` FUSE path, or ``gs://`` through
google-cloud-storage (which honours ``STORAGE_EMULATOR_HOST``). Every failure is a ``BadInput``
that names the URI and the fix.
"""

import hashlib
import shutil
from pathlib import Path

from vertex_loadtest.errors import BadInput

GCS_FUSE_ROOT = Path("/gcs")


def fetch(uri: str, destination: Path, what: str) -> Path:
    """Copies ``uri`` to ``destination`` and returns it.

    Args:
        uri: A local path, a ``/gcs/bucket/object`` path or a ``gs://bucket/object`` URI.
        destination: Where the copy goes.
        what: What the file is, for error messages ("locustfile", "payloads").

    Returns:
        ``destination``.
    """
    if uri.startswith("gs://"):
        bucket_name, _, blob_name = uri[len("gs://") :].partition("/")
        fuse_path = GCS_FUSE_ROOT / bucket_name / blob_name
        if fuse_path.is_file():
            return _copy_local(str(fuse_path), destination, what)
        return _download(uri, bucket_name, blob_name, destination, what)
    return _copy_local(uri, destination, what)


def _copy_local(path: str, destination: Path, what: str) -> Path:
    source = Path(path)
    if not source.is_file():
        raise BadInput(f"{what} {path} does not exist (or is not a file): check the path or the artifact URI")
    try:
        shutil.copyfile(source, destination)
    except OSError as error:
        raise BadInput(f"{what} {path} is not readable: {error.strerror}") from None
    return destination


def _download(uri: str, bucket_name: str, blob_name: str, destination: Path, what: str) -> Path:
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud.storage import Client

    if not bucket_name or not blob_name:
        raise BadInput(f"{what} {uri} is not a gs://BUCKET/OBJECT URI")
    try:
        Client().bucket(bucket_name).blob(blob_name).download_to_filename(str(destination))
    except exceptions.NotFound:
        raise BadInput(f"{what} {uri} does not exist: check the bucket and object name") from None
    except exceptions.Forbidden as error:
        raise BadInput(
            f"access to {what} {uri} was denied ({error.message}): grant the pipeline's service account "
            f"roles/storage.objectViewer on gs://{bucket_name}"
        ) from None
    except DefaultCredentialsError as error:
        raise BadInput(f"cannot read {what} {uri}: no Google credentials ({error})") from None
    return destination


def verify_sha256(path: Path, expected: str, uri: str) -> None:
    """Refuses a file whose SHA-256 differs from ``expected`` (hex), naming both digests."""
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected.strip().lower():
        raise BadInput(
            f"locustfile {uri} has SHA-256 {actual}, not the expected {expected}: refusing to run code "
            "that changed; update locustfile_sha256 if the change is intended"
        )
