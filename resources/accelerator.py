"""Where the I3D benchmark trains: in the Dagster run's own process (the embedded default), or as external compute
through Dagster Pipes running one entry point (`kinetics_assets/benchmark/pipes_train.py`): a local subprocess
here, or a TPU slice that talks to Dagster only through a GCS bucket (resources/tpu.py's `PipesGCSAccelerator`).
Either way the step metrics reach the run's logs and the materialization's metadata."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from kinetics_assets.benchmark.run import BenchmarkRun


def step_line(step: int, metrics: dict) -> str:
    """One step-metrics line of the run's log."""
    return f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))


def training_metadata(summary: dict) -> dict:
    """A training summary (`run_training`'s) as materialization metadata: numbers as numbers."""
    return {key: (round(value, 5) if isinstance(value, float) else value) for key, value in summary.items()}


class Accelerator(dg.ConfigurableResource):
    """Trains one benchmark run and returns what the checkpoint's materialization reports."""

    def train(self, context: dg.AssetExecutionContext, run: BenchmarkRun) -> dg.MaterializeResult:
        raise NotImplementedError


class InProcessAccelerator(Accelerator):
    """JAX in the run's process, on whatever devices it sees (CPU here)."""

    def train(self, context: dg.AssetExecutionContext, run: BenchmarkRun) -> dg.MaterializeResult:
        from kinetics_assets.benchmark.run import run_training

        def log(step: int, metrics: dict) -> None:  # every config.log_every_steps steps, and after the last
            context.log.info(step_line(step, metrics))

        summary = run_training(run, on_metrics=log)
        return dg.MaterializeResult(metadata={**training_metadata(summary), "workdir": dg.MetadataValue.path(run.workdir)})


class PipesSubprocessAccelerator(Accelerator):
    """The same training in a subprocess that reports through Dagster Pipes (logs and the materialization)."""

    def train(self, context: dg.AssetExecutionContext, run: BenchmarkRun) -> dg.MaterializeResult:
        command = [sys.executable, "-m", "kinetics_assets.benchmark.pipes_train"]
        client = dg.PipesSubprocessClient()
        return client.run(command=command, context=context, extras={"run": dataclasses.asdict(run)}) \
            .get_materialize_result()
