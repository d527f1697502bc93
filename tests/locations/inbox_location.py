"""A tiny code location for daemon tests: a sensor that requests one run per new file in $TEST_INBOX."""

import os
from pathlib import Path

import dagster as dg


@dg.asset
def inbox_file(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"processed {context.run.tags['dagster/run_key']}")


inbox_job = dg.define_asset_job("inbox_job", selection=[inbox_file], executor_def=dg.in_process_executor)


@dg.sensor(job=inbox_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def inbox_sensor(context: dg.SensorEvaluationContext):
    names = sorted(path.name for path in Path(os.environ["TEST_INBOX"]).iterdir())
    new = [name for name in names if name > (context.cursor or "")]
    if new:
        context.update_cursor(new[-1])
    return [dg.RunRequest(run_key=name) for name in new]


defs = dg.Definitions(assets=[inbox_file], jobs=[inbox_job], sensors=[inbox_sensor])
