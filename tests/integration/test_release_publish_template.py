"""scripts.publish_template uploads pipeline templates with kfp's own RegistryClient, here to a
loopback stand-in for an Artifact Registry Kubeflow Pipelines repository (same upload protocol:
multipart ``content`` plus comma-separated ``tags``, answered with ``package/version``)."""

import email
import email.policy

import pytest
from kfp import compiler, dsl
from kfp.registry import ApiAuth
from scripts import publish_template, specs

from tests.loopback_http import loopback_server
from vertex_loadtest import compile as compile_module


@dsl.component(base_image="python:3.11-slim")
def _step(text: str) -> str:
    return text


@dsl.pipeline(name="release-smoke")
def _two_task_pipeline(text: str = "hi"):
    first = _step(text=text)
    _step(text=first.output)


@pytest.fixture
def registry():
    uploads = []

    def upload(request, raw):
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = email.message_from_bytes(head + raw, policy=email.policy.HTTP)
        fields = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        uploads.append(
            {
                "path": request.path,
                "authorization": request.headers.get("Authorization"),
                "tags": fields["tags"].decode(),
                "content": fields["content"],
            }
        )
        return 200, b"release-smoke/sha256:" + b"0" * 64

    with loopback_server(upload, content_type="text/plain") as url:
        yield f"{url}/v1/repo", uploads


@pytest.fixture
def release_root(tmp_path, monkeypatch):
    """A release root holding one pipeline template listed in compile.SPECS, plus the real specs."""
    relative = "pipelines/release_smoke.yaml"
    monkeypatch.setattr(
        compile_module, "SPECS", (*compile_module.SPECS, ("tests", "_two_task_pipeline", relative))
    )
    for spec in specs.load_specs():
        (tmp_path / spec.relative_path).parent.mkdir(parents=True, exist_ok=True)
        if spec.document is not None:
            (tmp_path / spec.relative_path).write_bytes(spec.path.read_bytes())
    compiler.Compiler().compile(_two_task_pipeline, str(tmp_path / relative))
    return tmp_path, tmp_path / relative


def test_uploads_each_pipeline_template_with_version_and_latest_tags(registry, release_root, capsys):
    host, uploads = registry
    root, template = release_root
    assert publish_template.pipeline_templates(root)[-1] == template
    code = publish_template.main(
        ["--host", host, "--root", str(root), "--tag", "0.1.0", "--tag", "latest"], auth=ApiAuth("t0ken")
    )
    assert code == 0
    templates = publish_template.pipeline_templates(root)
    assert len(uploads) == len(templates)
    last = uploads[-1]
    assert last["path"] == "/v1/repo"
    assert last["authorization"] == "Bearer t0ken"
    assert last["tags"] == "0.1.0,latest"
    assert last["content"] == template.read_bytes()
    assert "release_smoke.yaml ->" in capsys.readouterr().out


def test_a_listed_template_that_was_not_compiled_stops_the_release(tmp_path, registry):
    host, uploads = registry
    with pytest.raises(FileNotFoundError, match="compile --output-root"):
        publish_template.main(["--host", host, "--root", str(tmp_path), "--tag", "0.1.0"], auth=ApiAuth("t"))
    assert uploads == []


def test_only_pipeline_specs_are_uploaded_as_templates():
    """Specs under pipelines/ are multi-task templates; every component spec is a single task."""
    listed = specs.load_specs()
    assert all(spec.document is not None for spec in listed), "make compile"
    for spec in listed:
        assert spec.is_pipeline == spec.relative_path.startswith("pipelines/"), spec.relative_path
    expected = [spec.path for spec in listed if spec.relative_path.startswith("pipelines/")]
    assert publish_template.pipeline_templates(specs.PACKAGE_DIR) == expected
