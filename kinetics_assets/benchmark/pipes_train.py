"""External-compute entry point of a benchmark run (`python -m kinetics_assets.benchmark.pipes_train`), launched by
a Dagster Pipes client: it reads the run from the Pipes extras, trains, logs step metrics to the Dagster run and
reports the checkpoint's materialization.

The bootstrap comes as environment variables or, where a launcher can only pass a command line (`gcloud ... ssh`),
as `--dagster-pipes-*` arguments. When it names a GCS bucket, the context is read from and the messages written to
GCS (resources/tpu.py); otherwise through Pipes' default channels (a local subprocess). On a multi-host slice
(`KINETICS_JAX_DISTRIBUTED=1`) every host joins the JAX job and trains its share, and only process 0 talks to
Dagster: one writer of the message chunks, one materialization.
"""

from __future__ import annotations

from dagster_pipes import (PipesCliArgsParamsLoader, PipesContextLoader, PipesDefaultContextLoader,
                           PipesDefaultMessageWriter, PipesEnvVarParamsLoader, PipesMessageWriter, PipesParamsLoader,
                           open_dagster_pipes)

from kinetics_assets.benchmark.run import BenchmarkRun, run_training
from resources.accelerator import step_line, training_metadata

GCS_MESSAGE_INTERVAL_S = 5.0  # seconds between message chunks a GCS writer uploads


def params_loader() -> PipesParamsLoader:
    cli = PipesCliArgsParamsLoader()
    return cli if cli.is_dagster_pipes_process() else PipesEnvVarParamsLoader()


def channels(params: PipesParamsLoader) -> tuple[PipesContextLoader, PipesMessageWriter]:
    """GCS context loader and message writer when the bootstrap names a bucket; Pipes' defaults otherwise."""
    if "bucket" not in params.load_context_params():
        return PipesDefaultContextLoader(), PipesDefaultMessageWriter()
    from dagster_pipes import PipesGCSContextLoader, PipesGCSMessageWriter
    from google.cloud import storage

    client = storage.Client()  # the host's own credentials (STORAGE_EMULATOR_HOST: the emulator, anonymously)
    return PipesGCSContextLoader(client), PipesGCSMessageWriter(client, interval=GCS_MESSAGE_INTERVAL_S)


def main() -> None:
    import jax

    from kinetics_assets.benchmark.train import maybe_initialize_distributed

    maybe_initialize_distributed()  # before anything asks JAX for devices: the global batch counts every host's
    params = params_loader()
    context_loader, message_writer = channels(params)
    if jax.process_index() != 0:
        with context_loader.load_context(params.load_context_params()) as context:
            run_training(BenchmarkRun(**context["extras"]["run"]))
        return
    with open_dagster_pipes(context_loader=context_loader, message_writer=message_writer,
                            params_loader=params) as pipes:
        run = BenchmarkRun(**pipes.get_extra("run"))

        def log(step: int, metrics: dict) -> None:  # every config.log_every_steps steps, and after the last
            pipes.log.info(step_line(step, metrics))

        summary = run_training(run, on_metrics=log)
        pipes.report_asset_materialization(metadata={**training_metadata(summary), "hosts": jax.process_count(),
                                                     "workdir": {"raw_value": run.workdir, "type": "path"}})


if __name__ == "__main__":
    main()
