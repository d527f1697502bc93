"""``kinetics i3d``: inspect the benchmark's I3D network."""

from __future__ import annotations

import typer

app = typer.Typer(help="The benchmark's I3D network (inflated Inception-V1).", no_args_is_help=True)


@app.command()
def summary(
    classes: int = typer.Option(700, "--classes", min=1, help="output classes"),
    width: float = typer.Option(1.0, "--width", min=0.01, help="channel width multiplier"),
    frames: int = typer.Option(32, "--frames", min=1, help="input clip length in frames"),
    resolution: int = typer.Option(224, "--resolution", min=1, help="input height and width in pixels"),
) -> None:
    """Print the exact trainable parameter count and every endpoint's output shape (batch of one clip)."""
    from kinetics_assets.benchmark.models import I3D, summarize

    result = summarize(I3D(classes, width), frames, resolution)
    typer.echo(f"I3D RGB, {classes} classes, width {width:g}, input 1x{frames}x{resolution}x{resolution}x3")
    for endpoint, shape in result.endpoints:
        typer.echo(f"  {endpoint:<18} {'x'.join(map(str, shape))}")
    typer.echo(f"Trainable parameters: {result.parameters:,} ({result.parameters} exactly)")
