"""External-compute entry point of a benchmark run (`python -m kinetics_assets.benchmark.pipes_train`), launched by
a Dagster Pipes client: it reads the run from the Pipes extras, trains, logs step metrics to the Dagster run and
reports the checkpoint's materialization."""

from __future__ import annotations

from dagster_pipes import open_dagster_pipes

from kinetics_assets.benchmark.run import BenchmarkRun, run_training
from resources.accelerator import LOG_EVERY, training_metadata


def main() -> None:
    with open_dagster_pipes() as pipes:
        run = BenchmarkRun(**pipes.get_extra("run"))

        def log(step: int, metrics: dict) -> None:
            if step % LOG_EVERY == 0:
                pipes.log.info(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))

        summary = run_training(run, on_metrics=log)
        pipes.report_asset_materialization(metadata={**training_metadata(summary),
                                                     "workdir": {"raw_value": run.workdir, "type": "path"}})


if __name__ == "__main__":
    main()
