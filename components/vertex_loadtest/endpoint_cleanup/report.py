"""What a cleanup did: the result types, and their Markdown and JSON renderings (with removal commands)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from vertex_loadtest.durations import format_seconds

EXIT_OK = 0
EXIT_REMAINING = 1
EXIT_BAD_INPUT = 2
MARKDOWN_LIMIT = 45_000


class Action(StrEnum):
    """What became of an endpoint or model (the strings are the reports' ``action`` values)."""

    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    KEPT = "kept"
    WOULD_DELETE = "would_delete"
    REFUSED = "refused"
    SKIPPED = "skipped"
    REMAINING = "remaining"
    FAILED = "failed"

    @property
    def remains(self) -> bool:
        """Whether the resource is still there although the cleanup owned it."""
        return self in (Action.REMAINING, Action.FAILED)


_ACTION_TEXT = {
    Action.DELETED: "deleted",
    Action.ALREADY_GONE: "already gone",
    Action.KEPT: "**kept**",
    Action.WOULD_DELETE: "would delete (dry run)",
    Action.REFUSED: "**refused** (not this run's)",
    Action.SKIPPED: "skipped",
    Action.REMAINING: "**REMAINS**",
    Action.FAILED: "**REMAINS** (failed)",
}


@dataclass
class DeployedModelInfo:
    """A deployed model as last seen on an endpoint: what it ran on and the traffic it carried."""

    id: str
    model: str
    display_name: str
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    replicas: str
    traffic: int = 0


@dataclass
class EndpointResult:
    """One endpoint: what it was, what the cleanup did, and what went wrong on the way."""

    name: str
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    explicit: bool = False
    action: Action = Action.REMAINING
    reason: str = ""
    created: str = ""
    lifetime_seconds: float | None = None
    seconds: float = 0.0
    deployed_models: list[DeployedModelInfo] = field(default_factory=list)
    models_undeployed: list[str] = field(default_factory=list)
    cancelled_operations: list[str] = field(default_factory=list)
    #: What the cleanup waited for and how long: in-flight operations, a busy endpoint.
    waited: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.action = Action(self.action)

    @property
    def remains(self) -> bool:
        return self.action.remains

    @property
    def still_deployed(self) -> list[DeployedModelInfo]:
        """Deployed models last seen on the endpoint that the cleanup did not undeploy."""
        return [d for d in self.deployed_models if d.id not in self.models_undeployed]


@dataclass
class ModelResult:
    """One model the run uploaded (``delete_models``)."""

    name: str
    display_name: str = ""
    action: Action = Action.REMAINING
    reason: str = ""
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.action = Action(self.action)

    @property
    def remains(self) -> bool:
        return self.action.remains


@dataclass
class CleanupReport:
    """The whole cleanup: where, for which run, each endpoint and model, and the exit code."""

    project: str
    location: str
    run_name: str
    run_state: str
    mode: str
    dry_run: bool
    ownership_labels: dict[str, str]
    api_endpoint: str
    started: str
    seconds: float = 0.0
    endpoints: list[EndpointResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> list[str]:
        return [e.name for e in self.endpoints if e.remains] + [m.name for m in self.models if m.remains]

    @property
    def refused(self) -> list[str]:
        return [e.name for e in self.endpoints if e.action == Action.REFUSED]

    @property
    def exit_code(self) -> int:
        if self.remaining:
            return EXIT_REMAINING
        if self.refused:
            return EXIT_BAD_INPUT
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["remaining"] = self.remaining
        data["refused"] = self.refused
        data["exit_code"] = self.exit_code
        data["ok"] = not self.remaining
        for endpoint, result in zip(data["endpoints"], self.endpoints, strict=True):
            endpoint["console_url"] = console_url(result.name)
            endpoint["remove_commands"] = (
                remove_commands(result.name, result.still_deployed) if result.remains else []
            )
        return data


def _name_parts(endpoint_name: str) -> tuple[str, str, str]:
    parts = endpoint_name.split("/")
    return parts[1], parts[3], parts[5]


def console_url(endpoint_name: str) -> str:
    """The Cloud console page of an endpoint."""
    project, location, endpoint_id = _name_parts(endpoint_name)
    return f"https://console.cloud.google.com/vertex-ai/locations/{location}/endpoints/{endpoint_id}?project={project}"


def remove_commands(endpoint_name: str, deployed_models: Iterable[DeployedModelInfo]) -> list[str]:
    """The gcloud commands that undeploy ``deployed_models`` and delete the endpoint."""
    project, location, endpoint_id = _name_parts(endpoint_name)
    where = f"--project={project} --region={location}"
    commands = [
        f"gcloud ai endpoints undeploy-model {endpoint_id} --deployed-model-id={deployed.id} {where}"
        for deployed in deployed_models
    ]
    commands.append(f"gcloud ai endpoints delete {endpoint_id} {where} --quiet")
    return commands


def _machines(result: EndpointResult) -> str:
    """``2 models on g2-standard-8 + 1 NVIDIA_L4, 1-2 replicas``, one line per distinct machine."""
    counts: dict[str, int] = {}
    for info in result.deployed_models:
        accel = f" + {info.accelerator_count} {info.accelerator_type}" if info.accelerator_type else ""
        replicas = f", {info.replicas} replicas" if info.replicas else ""
        text = f"{info.machine_type}{accel}{replicas}"
        counts[text] = counts.get(text, 0) + 1
    return "<br>".join(f"{n} model{'s' if n > 1 else ''} on {text}" for text, n in counts.items()) or "–"


def _headline(report: CleanupReport) -> str:
    owned = [e for e in report.endpoints if e.action not in (Action.SKIPPED, Action.REFUSED)]
    if report.dry_run:
        count = sum(e.action == Action.WOULD_DELETE for e in owned)
        return f"Dry run: {count} endpoint(s) would be removed; nothing changed."
    if report.remaining:
        return (
            f"**FAILED: {len(report.remaining)} resource(s) owned by this run remain** "
            "(how to remove them: below)."
        )
    if any(e.action == Action.KEPT for e in owned):
        return "Kept on success: the run succeeded and keep_on_success is set; nothing was removed."
    count = sum(e.action == Action.DELETED for e in owned)
    return f"Nothing owned by this run remains ({count} endpoint(s) deleted)."


def _endpoint_rows(report: CleanupReport) -> list[str]:
    if not report.endpoints:
        return ["No endpoint carries this run's labels.", ""]
    lines = [
        "| endpoint | display name | outcome | models undeployed | lived | machines |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in report.endpoints:
        lived = format_seconds(e.lifetime_seconds) if e.lifetime_seconds is not None else "–"
        outcome = _ACTION_TEXT[e.action] + (f": {e.reason}" if e.reason else "")
        lines.append(
            f"| `{e.name.rsplit('/', 1)[-1]}` | {e.display_name or '–'} | {outcome} | "
            f"{len(e.models_undeployed)} | {lived} | {_machines(e)} |"
        )
    return [*lines, ""]


def _leftover_lines(report: CleanupReport) -> list[str]:
    leftovers = [e for e in report.endpoints if e.remains]
    if not leftovers and not report.refused and not any(m.remains for m in report.models):
        return []
    lines = ["## What remains and how to remove it", ""]
    for e in leftovers:
        lines.append(f"- `{e.name}` ([console]({console_url(e.name)}))")
        lines += [f"  - error: {error}" for error in e.errors[-3:]]
        lines.append("  ```")
        lines += [f"  {c}" for c in remove_commands(e.name, e.still_deployed)]
        lines.append("  ```")
    for m in report.models:
        if m.remains:
            parts = m.name.split("/")
            lines.append(
                f"- model `{m.name}`: "
                f"`gcloud ai models delete {parts[-1]} --project={parts[1]} --region={parts[3]}`"
            )
    lines += [f"- refused `{e.name}`: {e.reason}" for e in report.endpoints if e.action == Action.REFUSED]
    return [*lines, ""]


def render_markdown(report: CleanupReport) -> str:
    """The task's Markdown report: outcome first, then one row per endpoint, then how to remove leftovers."""
    labels = ", ".join(f"`{k}={v}`" for k, v in report.ownership_labels.items()) or "–"
    lines = [
        f"# Endpoint cleanup{': ' + report.run_name if report.run_name else ''}",
        "",
        _headline(report),
        "",
        f"- run state: **{report.run_state}** · mode: {report.mode}{' (dry run)' if report.dry_run else ''}",
        f"- project / location: `{report.project}` / `{report.location}` · labels: {labels}",
        f"- took {format_seconds(report.seconds)}",
        "",
        *_endpoint_rows(report),
    ]
    if report.models:
        lines += ["| model | outcome |", "| --- | --- |"]
        lines += [
            f"| `{m.name.rsplit('/', 1)[-1]}` {m.display_name} | {_ACTION_TEXT[m.action]} {m.reason} |"
            for m in report.models
        ]
        lines.append("")
    waits = [f"- `{e.name.rsplit('/', 1)[-1]}`: {w}" for e in report.endpoints for w in e.waited]
    if waits:
        lines += ["## Waited for", "", *waits, ""]
    if report.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    lines += _leftover_lines(report)
    text = "\n".join(lines)
    if len(text) < MARKDOWN_LIMIT:
        return text
    return text[:MARKDOWN_LIMIT] + "\n\n… (truncated; the JSON report has everything)\n"


def failure_message(report: CleanupReport) -> str:
    """One paragraph naming what remains and the commands that remove it (the task's last log line)."""
    parts = [
        f"{e.name} ({console_url(e.name)}; {' && '.join(remove_commands(e.name, e.still_deployed))})"
        for e in report.endpoints
        if e.remains
    ]
    parts += [m.name for m in report.models if m.remains]
    if parts:
        return f"{len(parts)} resource(s) owned by run {report.run_name or '?'} remain: " + "; ".join(parts)
    return "explicitly named endpoint(s) refused (not this run's; pass force to remove): " + ", ".join(
        report.refused
    )


def write_reports(
    report: CleanupReport, markdown_path: str | Path | None, json_path: str | Path | None
) -> None:
    """Writes the Markdown and/or JSON report (each only when a path is given)."""
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(render_markdown(report), encoding="utf-8")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(
            json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
