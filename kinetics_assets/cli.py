"""``kinetics``: the human entry point — run the demo, open the UI, inspect annotation files."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import typer

from kinetics_assets.acquisition.download_cli import download
from kinetics_assets.acquisition.queries_cli import queries
from kinetics_assets.benchmark.cli import app as i3d_app
from kinetics_assets.dedup.cli import dedup
from resources.sandbox.cli import app as sandbox_app

app = typer.Typer(help="Curate Kinetics-style human-action video datasets.", no_args_is_help=True)
app.command()(queries)
app.command()(download)
app.command()(dedup)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(i3d_app, name="i3d")


@app.command()
def demo(
    faults: float = typer.Option(0.0, "--faults", min=0.0, max=1.0,
                                 help="share of sandbox requests answered with transient faults (429, 503, stalls, "
                                      "truncation, throttled sessions); the release must come out the same"),
) -> None:
    """Run the main job on the embedded default (the sandbox profile) into the local Dagster instance."""
    from kinetics_assets.demo import run_demo

    run_demo(echo=typer.echo, faults=faults)


@app.command()
def ui(port: int = typer.Option(3000, help="port on 127.0.0.1")) -> None:
    """Open the Dagster UI (``dagster dev``) on 127.0.0.1 over the same instance the demo writes to.

    Runs that a killed process left started are marked failed first; Ctrl-C (or SIGTERM) stops the UI and every
    process it started within a few seconds."""
    import dagster as dg

    from kinetics_assets.instance import WORKSPACE, ensure_dagster_home, fail_dead_runs
    from kinetics_assets.process_group import run_process_group
    from kinetics_assets.files_server import serving_files
    from resources.profiles import resources_for
    from resources.storage import LocalArtifactStore

    home = ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        dead = fail_dead_runs(instance)
    if dead:
        typer.echo(f"Marked failed: {len(dead)} run(s) whose process is gone ({', '.join(dead)})")
    artifacts = resources_for()["artifacts"]
    local = isinstance(artifacts, LocalArtifactStore) and artifacts.files_url  # a bucket's files have their own links
    typer.echo(f"Dagster UI: http://127.0.0.1:{port}  (DAGSTER_HOME={home})"
               + (f"   its file links: {artifacts.files_url}" if local else ""))
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)]
    with serving_files(Path(artifacts.root), artifacts.files_url) if local else contextlib.nullcontext():
        code = run_process_group(command, env=os.environ)
    raise typer.Exit(code)


@app.command()
def stats(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="official annotation CSVs"),
    edition: str = typer.Option("", help="edition whose class list validates labels (default: guessed)"),
) -> None:
    """Print Table 1 rows (clips per class) for annotation files and a summary of rejected rows."""
    from kinetics_assets.editions.annotations import AnnotationFileError, guess_edition
    from kinetics_assets.editions.statistics import file_statistics

    try:
        chosen = edition or guess_edition(files)
    except AnnotationFileError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(2) from None
    result = file_statistics(files, chosen)
    if result.refused:
        for refused in result.refused:
            typer.echo(f"Error: {refused.source_file}: {refused.reason}", err=True)
        raise typer.Exit(2)
    typer.echo(f"Edition: {chosen} ({result.accepted} rows accepted from {len(files)} file(s))\n")
    typer.echo(result.table.to_markdown(index=False) if not result.table.empty else "no labelled rows to count")
    for note in result.notes:
        typer.echo(f"note: {note}")
    rejected = sum(result.rejected_by_reason.values())
    typer.echo(f"\nRejected rows: {rejected}; exact duplicates collapsed: {result.duplicates_collapsed}")
    for reason, count in result.rejected_by_reason.most_common(20):
        typer.echo(f"  {count:6d}  {reason}")
    if result.first_rejection:
        typer.echo(f"  first: {result.first_rejection.source_file}:{result.first_rejection.line}")
