"""`kinetics sandbox ...`: run the sandbox platform by hand (serve) and emit its previous edition.

`serve` builds the server exactly as the Dagster resource does (same config fields), so what a
person pokes at with curl or yt-dlp is what the pipeline talks to.
"""

from __future__ import annotations

import datetime
import threading

import typer

from resources.sandbox.edition import edition
from resources.sandbox.resource import SandboxPlatform

app = typer.Typer(help="The local sandbox video platform.", no_args_is_help=True)
app.command()(edition)


@app.command()
def serve(
    seed: int = typer.Option(0, help="World seed."),
    classes: str = typer.Option("", help="Comma-separated Kinetics-700 class names (default: the demo set)."),
    relevant_per_class: int = typer.Option(60, min=0),
    distractors_per_class: int = typer.Option(20, min=0),
    clock: str = typer.Option("", help="Platform 'today' as YYYY-MM-DD (default: world epoch + 1 year)."),
    fault_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests failing transiently."),
    fault_seed: int = typer.Option(0),
    cache_dir: str = typer.Option("", help="Rendered-media cache (default: per-user cache dir)."),
) -> None:
    """Serve the sandbox on 127.0.0.1 (free port), print its base URL, run until Ctrl-C."""
    platform = SandboxPlatform(
        seed=seed,
        classes=[c.strip() for c in classes.split(",") if c.strip()] or None,
        relevant_per_class=relevant_per_class,
        distractors_per_class=distractors_per_class,
        clock=clock or None,
        fault_rate=fault_rate,
        fault_seed=fault_seed,
        cache_dir=cache_dir or None,
    )
    try:
        typer.echo(platform.server.base_url)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        platform.shutdown()


@app.command()
def clock(
    advance_days: int = typer.Option(0, min=0, help="Move the platform this many days on (time never runs back)."),
) -> None:
    """Show the active profile's sandbox date, moved on by --advance-days for every process serving its world."""
    from resources.profiles import resources_for

    platform = resources_for()["video_platform"]
    if not isinstance(platform, SandboxPlatform):
        raise typer.BadParameter("the active profile's platform is not the sandbox")
    shared = platform.shared_clock()
    if advance_days:
        shared.set(shared.today() + datetime.timedelta(days=advance_days))
    typer.echo(f"{shared.today().isoformat()}  ({shared.path})")
