"""The documentation site builds with ``mkdocs build --strict`` (what ``make docs`` runs), and its
component reference is generated from the compiled specs, so it cannot drift from them."""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import gen_component_docs, specs

REPO_ROOT = specs.REPO_ROOT


def _component_specs():
    return [spec for spec in specs.load_specs() if not spec.relative_path.startswith("pipelines/")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_every_hand_written_component_page_asks_for_its_own_spec():
    for spec in _component_specs():
        page = REPO_ROOT / "docs" / gen_component_docs.page_path(spec)
        if page.exists():
            assert f"<!-- spec: {spec.relative_path} -->" in page.read_text(encoding="utf-8"), page


def test_generated_tables_list_every_input_and_output_of_the_spec():
    for spec in _component_specs():
        assert spec.document is not None, f"{spec.relative_path}: run make compile"
        tables = gen_component_docs.render_interface(spec)
        root = spec.document["root"]
        for section in ("inputDefinitions", "outputDefinitions"):
            for kind in ("parameters", "artifacts"):
                for name in (root.get(section) or {}).get(kind) or {}:
                    assert f"| `{name}` |" in tables, (spec.relative_path, name)
        for executor in specs.executors(spec):
            assert executor.image in tables


@pytest.mark.slow
def test_site_builds_strict_with_one_generated_page_per_component(site):
    for spec in _component_specs():
        page = site / gen_component_docs.page_path(spec).removesuffix(".md") / "index.html"
        assert page.exists(), page
        text = _text(page)
        assert spec.attribute in text
        root = spec.document["root"]
        for name in (root.get("inputDefinitions") or {}).get("parameters") or {}:
            assert name in text, (spec.relative_path, name)
        assert "<!-- spec:" not in page.read_text(encoding="utf-8")
        # the page is in the navigation of the home page
        assert gen_component_docs.page_path(spec).removesuffix(".md") in (site / "index.html").read_text()


@pytest.mark.slow
def test_site_has_the_operations_pages_and_the_error_catalogue(site):
    for page in ("quickstart", "installing", "rehearsal", "locustfiles", "slo-expressions",
                 "reference-pipeline", "operations/iam", "operations/cost", "operations/troubleshooting",
                 "operations/images", "operations/releasing", "changelog"):  # fmt: skip
        assert (site / page / "index.html").exists(), page
    troubleshooting = _text(site / "operations/troubleshooting/index.html")
    for module, name, _bases, _doc in gen_component_docs.error_classes():
        if ".rehearsal." not in module:
            assert f"{module}.{name}" in troubleshooting
    assert "Unreleased" in _text(site / "changelog/index.html")


def test_a_component_without_a_hand_written_page_gets_a_generated_one():
    for spec in _component_specs():
        page = gen_component_docs.render_generated_page(spec)
        assert page.startswith(f"# {spec.attribute}\n")
        assert f"from vertex_loadtest import {spec.attribute}" in page
        assert gen_component_docs.render_interface(spec) in page


def test_markers_expand_and_an_unpublished_spec_says_so():
    by_path = {spec.relative_path: spec for spec in specs.load_specs()}
    some = next(iter(by_path))
    expanded = gen_component_docs.expand_markers(f"intro\n<!-- spec: {some} -->\n", by_path)
    assert expanded.startswith("intro\n### Inputs")
    assert "not listed in `compile.SPECS` yet" in gen_component_docs.expand_markers(
        "<!-- spec: pipelines/not_yet.yaml -->\n", by_path
    )
    assert "| exception | is a | raised when |" in gen_component_docs.expand_markers("<!-- errors -->\n", {})
