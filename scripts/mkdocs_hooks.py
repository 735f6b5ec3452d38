"""mkdocs hooks (``hooks:`` in mkdocs.yml): the component reference is generated from the compiled
specs at every build, so the site cannot drift from them.

* ``on_config``: the nav entry ``Components: generated:components`` becomes one page per component
  spec in ``vertex_loadtest.compile.SPECS`` (in that order).
* ``on_files``: a component without a hand-written ``docs/components/<component>.md`` gets a generated
  page; ``slo-expressions.md`` and ``stats-schema.md``, until someone writes them, are generated from
  the docstrings of ``slo.py`` and ``stats.py`` (read, never imported).
* ``on_files``: ``RELEASING.md`` and ``CHANGELOG.md`` (repository root) become
  ``operations/releasing.md`` and ``changelog.md``.
* ``on_page_markdown``: ``<!-- spec: PATH -->`` lines become the spec's inputs/outputs/image tables and
  ``<!-- errors -->`` the catalogue of exceptions the package raises.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mkdocs.structure.files import File, Files

from scripts import gen_component_docs, specs

COMPONENTS_SENTINEL = "generated:components"

#: Pages another part of the project owns; generated from a module docstring until written.
DOCSTRING_PAGES = {
    "slo-expressions.md": ("SLO expressions", "slo.py"),
    "stats-schema.md": ("stats.json schema", "stats.py"),
}


#: Pages made from a repository file outside docs/ (one source of truth for both).
REPOSITORY_PAGES = {"operations/releasing.md": "RELEASING.md", "changelog.md": "CHANGELOG.md"}


def _component_specs() -> list[specs.Spec]:
    return [spec for spec in specs.load_specs() if not spec.relative_path.startswith("pipelines/")]


def _component_nav() -> list[dict[str, str]]:
    return [{spec.attribute: gen_component_docs.page_path(spec)} for spec in _component_specs()]


def _replace_sentinel(nav: Any) -> Any:
    if isinstance(nav, list):
        return [_replace_sentinel(item) for item in nav]
    if isinstance(nav, dict):
        return {
            key: (_component_nav() if value == COMPONENTS_SENTINEL else _replace_sentinel(value))
            for key, value in nav.items()
        }
    return nav


def on_config(config: Any) -> Any:
    config["nav"] = _replace_sentinel(config["nav"])
    return config


def docstring_page(title: str, relative: str) -> str:
    """Returns a page made of a package module's docstring (shown as written, in a code block when it
    holds a grammar or schema indented by four spaces)."""
    source = (specs.PACKAGE_DIR / relative).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    body = doc.replace("``", "`").replace("::\n", ":\n")
    return (
        f"# {title}\n\n{body}\n\n*Generated from the docstring of `components/vertex_loadtest/{relative}`.*\n"
    )


def on_files(files: Files, config: Any) -> Files:
    for spec in _component_specs():
        path = gen_component_docs.page_path(spec)
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=gen_component_docs.render_generated_page(spec)))
    for path, source in REPOSITORY_PAGES.items():
        if files.get_file_from_path(path) is None:
            content = (specs.REPO_ROOT / source).read_text(encoding="utf-8")
            files.append(File.generated(config, path, content=content))
    for path, (title, relative) in DOCSTRING_PAGES.items():
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=docstring_page(title, relative)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    by_path = {spec.relative_path: spec for spec in specs.load_specs()}
    return gen_component_docs.expand_markers(markdown, by_path)
