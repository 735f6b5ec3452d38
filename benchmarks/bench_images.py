"""Image budgets: each image's exact install (``scripts.images``, as its Dockerfile runs it) in a fresh
virtual environment, measured as site-packages size against the image's budget.

The numbers are the Python payload of each image; the final image adds the python:3.11-slim base.
"""

import platform
import tempfile
import time
from pathlib import Path

from scripts import images


def measure(work: Path) -> list[dict]:
    """Builds the wheel once and every image's environment under ``work``; returns one row per image."""
    wheel_dir = images.build_dist(work / "dist")
    rows = []
    for recipe in images.recipes():
        started = time.perf_counter()
        env = images.install_image_env(recipe, wheel_dir, work / recipe.image)
        installed = images.installed_distributions(env)
        rows.append(
            {
                "image": recipe.image,
                "extra": recipe.extra,
                "distributions": len(installed),
                "size_mb": images.tree_size(images.site_packages(env)) / 1e6,
                "budget_mb": images.BUDGET_MB[recipe.image],
                "forbidden": sorted(set(images.FORBIDDEN.get(recipe.image, ())) & set(installed)),
                "install_s": time.perf_counter() - started,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| image | extra | distributions | site-packages (MB) | budget (MB) | within | forbidden present "
        "| install (s) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        within = "yes" if row["size_mb"] <= row["budget_mb"] else "**no**"
        lines.append(
            f"| {row['image']} | {row['extra']} | {row['distributions']} | {row['size_mb']:.1f} "
            f"| {row['budget_mb']} | {within} | {', '.join(row['forbidden']) or 'none'} "
            f"| {row['install_s']:.0f} |"
        )
    return "\n".join(lines)


def run(results_dir: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-images-") as work:
        rows = measure(Path(work))
    return (
        table(rows)
        + f"\n\nsite-packages of each image's virtual environment as its Dockerfile installs it (the lock "
        f"file with --require-hashes, then the wheel with the image's extra and no index), including the "
        f"venv's own pip/setuptools; MB = 10^6 bytes; Python {platform.python_version()} on "
        f"{platform.machine()}. Budgets: scripts/images.py BUDGET_MB.\n"
    )
