"""Runs every ``benchmarks/bench_*.py`` (or those named on the command line).

Each module exposes ``run(results_dir: Path) -> str`` returning a Markdown table; it is printed and
written to ``benchmarks/results/<name>.md``.
"""

import argparse
import importlib
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def main(argv: list[str] | None = None) -> int:
    available = sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(available)}")
    names = parser.parse_args(argv).names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; available: {', '.join(available)}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        table = importlib.import_module(f"benchmarks.bench_{name}").run(RESULTS_DIR)
        (RESULTS_DIR / f"{name}.md").write_text(table.rstrip() + "\n", encoding="utf-8")
        print(f"## {name}\n\n{table.rstrip()}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
