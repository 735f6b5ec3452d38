"""``vertex-loadtest cleanup``: remove every endpoint a run created (or sweep old ones).

Exit codes: 0 nothing owned remains, 1 something owned remains (named, with the commands that remove
it), 2 bad input (including an explicitly named endpoint that is not the run's, without --force).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cleanup",
        help="undeploy and delete a run's endpoints, or --sweep old ones (exit 0 clean, 1 leftovers)",
        description=(
            "Find the endpoints a pipeline run created (by its labels and/or by name), undeploy every model "
            "on them, delete them, and report. Exit 0 when nothing owned remains, 1 when something does, "
            "2 on bad input."
        ),
    )
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--location", required=True, help="Vertex AI region, e.g. us-central1")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an ownership label the endpoints carry (repeatable; all must match)",
    )
    parser.add_argument(
        "--run-name",
        default="",
        help="the pipeline job name: adds the ownership label vertex-loadtest-run=<sanitized name>",
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="NAME",
        help="an endpoint resource name or id to remove (repeatable; must carry the labels unless --force)",
    )
    parser.add_argument(
        "--api-endpoint",
        default="",
        metavar="URL",
        help="Vertex API endpoint (default: $VERTEX_LOADTEST_API_ENDPOINT, else "
        "LOCATION-aiplatform.googleapis.com; http://127.0.0.1:PORT for the emulator)",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be done, change nothing")
    parser.add_argument(
        "--force", action="store_true", help="also remove explicitly named endpoints without the labels"
    )
    parser.add_argument(
        "--keep-on-success", action="store_true", help="keep the endpoints when --run-state is SUCCEEDED"
    )
    parser.add_argument(
        "--run-state", default="", help="the run's final state (SUCCEEDED, FAILED, CANCELLED)"
    )
    parser.add_argument("--delete-models", action="store_true", help="also delete models carrying the labels")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="remove endpoints labelled by this library whose run is no longer running (see --older-than)",
    )
    parser.add_argument(
        "--older-than", default="6h", help="with --sweep: only endpoints created longer ago (default: 6h)"
    )
    parser.add_argument(
        "--deadline",
        default="45m",
        help="give up (exit 1) after this long (default: 45m, enough to wait out a GPU deploy in flight)",
    )
    parser.add_argument(
        "--in-flight",
        choices=("cancel", "wait"),
        default="cancel",
        help="cancel in-flight deploys before waiting them out (default) or only wait",
    )
    parser.add_argument("--report", metavar="PATH", help="also write the Markdown report here")
    parser.add_argument("--report-json", metavar="PATH", help="also write the JSON report here")
    parser.set_defaults(handler=_run)


def parse_labels(items: list[str]) -> dict[str, str]:
    from vertex_loadtest.errors import BadInput

    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--label {item!r}: write KEY=VALUE, e.g. vertex-loadtest-run=my-run-123")
        labels[key.strip()] = value.strip()
    return labels


def _run(args: argparse.Namespace) -> int:
    from vertex_loadtest.durations import parse_duration
    from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
    from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
    from vertex_loadtest.endpoint_cleanup.report import render_markdown

    config = CleanupConfig(
        project=args.project,
        location=args.location,
        run_name=args.run_name,
        labels=parse_labels(args.label),
        endpoints=list(args.endpoint),
        run_state=args.run_state,
        api_endpoint=args.api_endpoint,
        dry_run=args.dry_run,
        force=args.force,
        keep_on_success=args.keep_on_success,
        delete_models=args.delete_models,
        sweep=args.sweep,
        older_than_seconds=parse_duration(args.older_than, "--older-than"),
        deadline_seconds=parse_duration(args.deadline, "--deadline"),
        in_flight=args.in_flight,
    )
    report = run_cleanup(config, args.report, args.report_json)
    sys.stdout.write(render_markdown(report))
    if report.exit_code == 2:
        print(f"vertex-loadtest cleanup: error: refused {', '.join(report.refused)}", file=sys.stderr)
    return report.exit_code
