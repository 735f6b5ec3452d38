"""Generates the component reference from the compiled specs, so the docs cannot drift from them.

For every spec in ``vertex_loadtest.compile.SPECS`` the inputs, outputs and image are rendered from
the compiled YAML (types, defaults and the descriptions KFP took from the docstrings). The mkdocs hook
(``scripts/mkdocs_hooks.py``) calls this while the site builds:

* a hand-written page replaces the line ``<!-- spec: <path in SPECS> -->`` with the spec's tables;
* a component spec with no hand-written page ``docs/components/<component>.md`` gets a generated one.

``python -m scripts.gen_component_docs OUT`` writes the same pages to ``OUT`` (for reading without
mkdocs, or a diff in review).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

from scripts import specs

DOCS_DIR = specs.REPO_ROOT / "docs"
MARKER = re.compile(r"^<!--\s*spec:\s*(?P<path>\S+)\s*-->\s*$", re.MULTILINE)
_EXCEPTION_BASE = re.compile(r"(Error|Exception|BadInput|Aborted|Failed|Incomplete|Reached)$")
ERRORS_MARKER = re.compile(r"^<!--\s*errors\s*-->\s*$", re.MULTILINE)

PARAMETER_TYPES = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
    "LIST": "list",
    "STRUCT": "dict",
    "TASK_FINAL_STATUS": "PipelineTaskFinalStatus",
}


def page_path(spec: specs.Spec) -> str:
    """Returns the docs-relative page of a component spec: ``components/<component-dir-with-dashes>.md``."""
    return f"components/{spec.relative_path.split('/', 1)[0].replace('_', '-')}.md"


_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _cell(text: Any) -> str:
    """Returns text fit for a table cell: one line, pipes escaped, '<' escaped outside code spans (so
    ``<run_name>`` is not taken for an HTML tag)."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    parts, last = [], 0
    for match in _CODE_SPAN.finditer(flat):
        parts += [flat[last : match.start()].replace("<", "&lt;"), match.group(0)]
        last = match.end()
    return "".join([*parts, flat[last:].replace("<", "&lt;")])


def _default(definition: dict[str, Any]) -> str:
    """Returns the default as Python would spell it, or what a missing default means."""
    kind = definition.get("parameterType")
    if kind == "TASK_FINAL_STATUS":
        return "filled in by KFP"
    if "defaultValue" in definition:
        value = definition["defaultValue"]
        if isinstance(value, str) and value.startswith("{{$"):
            return f"`{value}` (filled in at run time)"
        if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
            value = int(value)
        return f"`{value!r}`"
    if definition.get("isOptional"):
        return "`None`"
    return "**required**"


def _required_first(items: dict[str, Any]) -> list[tuple[str, Any]]:
    def required(definition: dict[str, Any]) -> bool:
        return "defaultValue" not in definition and not definition.get("isOptional")

    return sorted(items.items(), key=lambda item: (not required(item[1]), item[0]))


def _rows(definitions: dict[str, Any], with_default: bool) -> list[str]:
    rows = []
    for name, definition in _required_first(definitions.get("parameters") or {}):
        kind = PARAMETER_TYPES.get(definition.get("parameterType", ""), definition.get("parameterType", ""))
        default = f" {_default(definition)} |" if with_default else ""
        rows.append(f"| `{name}` | `{kind}` |{default} {_cell(definition.get('description', ''))} |")
    for name, definition in _required_first(definitions.get("artifacts") or {}):
        kind = definition.get("artifactType", {}).get("schemaTitle", "")
        if definition.get("isArtifactList"):
            kind = f"List[{kind}]"
        default = f" {_default(definition)} |" if with_default else ""
        rows.append(f"| `{name}` | artifact `{kind}` |{default} {_cell(definition.get('description', ''))} |")
    return rows


def render_interface(spec: specs.Spec, heading: str = "##") -> str:
    """Returns Markdown tables of a spec's inputs, outputs and image(s), from its compiled YAML."""
    if spec.document is None:
        return (
            f'!!! note "Not compiled yet"\n    `{spec.relative_path}` is listed in `compile.SPECS` but '
            "has not been compiled: run `make compile`.\n"
        )
    root = spec.document.get("root") or {}
    inputs = _rows(root.get("inputDefinitions") or {}, with_default=True)
    outputs = _rows(root.get("outputDefinitions") or {}, with_default=False)
    parts = [f"{heading} Inputs\n"]
    if inputs:
        parts += ["| name | type | default | description |", "| --- | --- | --- | --- |", *inputs]
    else:
        parts.append("None.")
    parts += ["", f"{heading} Outputs\n"]
    if outputs:
        parts += ["| name | type | description |", "| --- | --- | --- |", *outputs]
    else:
        parts.append("None.")
    images = sorted({executor.image for executor in specs.executors(spec)})
    parts += ["", f"{heading} Image{'s' if len(images) > 1 else ''}\n"]
    parts += [f"- `{image}`" for image in images]
    parts += [
        "",
        f"Generated from `components/vertex_loadtest/{spec.relative_path}` "
        f"(`{spec.module}.{spec.attribute}`).",
        "",
    ]
    return "\n".join(parts)


def description(spec: specs.Spec) -> str:
    """Returns the docstring summary KFP writes into the spec's header (``# Description: ...``)."""
    if spec.document is None:
        return ""
    for line in spec.path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# Description:"):
            return line.removeprefix("# Description:").strip()
    return str((spec.document.get("pipelineInfo") or {}).get("description") or "")


def render_generated_page(spec: specs.Spec) -> str:
    """Returns a whole page for a spec that has no hand-written one."""
    return "\n".join(
        [
            f"# {spec.attribute}",
            "",
            description(spec),
            "",
            "```python",
            f"from vertex_loadtest import {spec.attribute}",
            "```",
            "",
            render_interface(spec),
        ]
    )


def expand_markers(markdown: str, by_path: dict[str, specs.Spec]) -> str:
    """Replaces every ``<!-- spec: PATH -->`` line with PATH's tables and ``<!-- errors -->`` with the
    error catalogue."""

    def spec_tables(match: re.Match[str]) -> str:
        path = match.group("path")
        if path not in by_path:
            return (
                f'!!! note "Not published yet"\n    `{path}` is not listed in `compile.SPECS` yet; this '
                "section fills itself in once it is.\n"
            )
        return render_interface(by_path[path], heading="###")

    markdown = MARKER.sub(spec_tables, markdown)
    return ERRORS_MARKER.sub(lambda _match: render_errors(), markdown)


def error_classes(package_dir: Path = specs.PACKAGE_DIR) -> list[tuple[str, str, str, str]]:
    """Returns (module, class, bases, docstring) for every exception class the package defines.

    Read with ``ast`` (nothing is imported: runtime modules import locust, which must stay out of the
    documentation build).
    """
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        module = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [ast.unparse(base) for base in node.bases]
            if any(_EXCEPTION_BASE.search(base) for base in bases):
                found.append((module, node.name, ", ".join(bases), ast.get_docstring(node) or ""))
    return found


def render_errors() -> str:
    rows = ["| exception | is a | raised when |", "| --- | --- | --- |"]
    for module, name, bases, doc in error_classes():
        if ".rehearsal." in module:
            continue
        rows.append(f"| `{module}.{name}` | `{bases}` | {_cell(doc.split(chr(10) + chr(10))[0])} |")
    return "\n".join(rows) + "\n"


def pages(docs_dir: Path = DOCS_DIR) -> dict[str, str]:
    """Returns {docs-relative path: Markdown} of every page the specs generate or complete."""
    loaded = specs.load_specs()
    by_path = {spec.relative_path: spec for spec in loaded}
    result = {}
    for spec in loaded:
        if spec.is_pipeline or spec.relative_path.startswith("pipelines/"):
            continue
        path = page_path(spec)
        handwritten = docs_dir / path
        if handwritten.exists():
            result[path] = expand_markers(handwritten.read_text(encoding="utf-8"), by_path)
        else:
            result[path] = render_generated_page(spec)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.gen_component_docs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("output", type=Path, help="directory to write the component pages to")
    args = parser.parse_args(argv)
    for relative, markdown in pages().items():
        target = args.output / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(markdown, encoding="utf-8")
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
