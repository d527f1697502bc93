"""I3D training as external compute that talks to Dagster only through GCS (the TPU path), against the GCS emulator,
with local processes standing in for the TPU slice's hosts.

Protects: an i3d_checkpoint partition materialized through PipesGCSAccelerator reaches the run's event log (its
step-metric log lines and its materialization) through message chunks in the bucket, the context blob is gone
afterwards, and the result equals the same partition trained in the run's process; the stand-in hosts see none
of the Dagster process's environment beyond the Pipes bootstrap and how to reach GCS, several of them get one JAX
coordinator and their process ids, and they get the run's folders by the names they see; the TPU VM launcher's
command and the GKE launcher's Job are exactly what they must be, and bad names never reach them.

Not run here: two hosts training for real. Run by hand (two processes over a local coordinator, one partition),
both hosts trained their halves of a global batch of 16 to the same loss and Orbax wrote one checkpoint, but
XLA's CPU compile of the I3D step for the two-process mesh took 4.5 minutes on this loaded 2-core machine (one
host: well under one), so the test covers the multi-host path by its parts: each host's share of a global batch
(test_i3d_input) and each host's environment (below).
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml

from gcs_emulator import gcs_emulator
from kinetics_assets.benchmark import assets as benchmark
from kinetics_assets.benchmark.assets import BenchmarkSettings
from kinetics_assets.benchmark.run import BenchmarkRun
from resources.accelerator import InProcessAccelerator
from resources.storage import LocalArtifactStore, LocalParquetIOManager
from resources.tpu import (ENTRY_POINT, GkeTpuJobLauncher, LocalProcessLauncher, PipesGCSAccelerator,
                           TpuVmLauncher, on_hosts)
from test_benchmark_assets import write_release

PARTITION = "100"  # 1 clip a class at the tests' scale: 2 clips, one step an epoch
EPOCHS = 20  # 20 steps: one step-metric log line (the tiny configuration logs every 20 steps)
PREFIX = "pipes/"
EXACT = ("clips", "classes", "steps", "steps_per_epoch", "global_batch", "step", "learning_rate")


def _resources(root: Path, accelerator, cache: Path) -> dict:
    return {
        "artifacts": LocalArtifactStore(root=str(root / "artifacts")),
        "io_manager": LocalParquetIOManager(base_dir=str(root / "assets")),
        "benchmark": BenchmarkSettings(model="tiny", inputs="demo", examples_scale=0.01, epochs=EPOCHS,
                                       compilation_cache=str(cache)),
        "accelerator": accelerator,
    }


def _gcs_accelerator(bucket: str, host_paths: dict[str, str]) -> PipesGCSAccelerator:
    from dagster_gcp import GCSResource

    return PipesGCSAccelerator(gcs=GCSResource(project="kinetics-test"), bucket=bucket, prefix=PREFIX,
                               poll_interval_s=0.5, host_paths=host_paths, launcher=LocalProcessLauncher(timeout_s=240))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The same partition trained in the run's process and over GCS, each in its own artifacts folder holding the
    same shards (so neither resumes from the other's checkpoint). The GCS run's host sees its artifacts folder
    under another name, as a TPU host sees the bucket at its mount."""
    from google.cloud import storage

    roots = {name: tmp_path_factory.mktemp(name) for name in ("in_process", "gcs")}
    cache = tmp_path_factory.mktemp("jax_cache")
    assets = dg.load_assets_from_modules([benchmark])
    write_release(roots["in_process"] / "artifacts")
    dg.materialize(assets, selection=["benchmark_shards"],
                   resources=_resources(roots["in_process"], InProcessAccelerator(), cache))
    shutil.copytree(roots["in_process"] / "artifacts", roots["gcs"] / "artifacts")
    mount = tmp_path_factory.mktemp("host") / "gcs"
    mount.symlink_to(roots["gcs"] / "artifacts", target_is_directory=True)
    results, blobs = {}, {}
    with gcs_emulator() as emulator, pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        env.setenv("GOOGLE_CLOUD_PROJECT", "kinetics-test")
        bucket = storage.Client().bucket(emulator.bucket)
        for name, accelerator in (("in_process", InProcessAccelerator()),
                                  ("gcs", _gcs_accelerator(emulator.bucket, {str(roots["gcs"] / "artifacts"): str(mount)}))):
            before = {blob.name for blob in bucket.list_blobs()}
            instance = dg.DagsterInstance.ephemeral()
            result = dg.materialize(assets, selection=["i3d_checkpoint"], partition_key=PARTITION, instance=instance,
                                    resources=_resources(roots[name], accelerator, cache))
            assert result.success
            results[name] = (result, instance)
            blobs[name] = {blob.name: blob.download_as_bytes() for blob in bucket.list_blobs()
                           if blob.name not in before}
    return roots, mount, results, blobs


def _materialization(result) -> dict:
    [event] = result.asset_materializations_for_node("i3d_checkpoint")
    return {key: value.value for key, value in event.metadata.items()}


def _log_messages(result, instance) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_the_step_metrics_and_the_materialization_arrive_through_the_bucket(trained):
    _, _, results, blobs = trained
    result, instance = results["gcs"]
    [step_line] = [message for message in _log_messages(result, instance) if message.startswith("step ")]
    assert step_line.startswith(f"step {EPOCHS}: accuracy ") and " loss " in step_line
    metadata = _materialization(result)
    stored = instance.get_latest_materialization_event(dg.AssetKey("i3d_checkpoint"))
    assert stored.asset_materialization.partition == PARTITION
    assert {key: value.value for key, value in stored.asset_materialization.metadata.items()} == metadata
    chunks = {name: data for name, data in blobs["gcs"].items() if name.startswith(f"{PREFIX}messages/")}
    assert chunks and all(name.endswith(".json") for name in chunks)
    messages = [json.loads(line) for data in chunks.values() for line in data.decode().splitlines() if line]
    methods = [message["method"] for message in messages]
    assert methods.count("report_asset_materialization") == 1 and "log" in methods and methods[-1] == "closed"
    assert step_line in [message["params"]["message"] for message in messages if message["method"] == "log"]
    assert not any(name.startswith(f"{PREFIX}context/") for name in blobs["gcs"]), "the context blob is removed"


def test_over_gcs_the_result_equals_the_in_process_run(trained):
    roots, mount, results, _ = trained
    local, remote = _materialization(results["in_process"][0]), _materialization(results["gcs"][0])
    assert remote.pop("hosts") == 1
    assert set(remote) == set(local)
    assert {key: remote[key] for key in EXACT} == {key: local[key] for key in EXACT}
    assert local["steps"] == EPOCHS and local["clips"] == 2
    assert remote["loss"] == pytest.approx(local["loss"], rel=1e-5)
    assert remote["accuracy"] == pytest.approx(local["accuracy"], abs=1e-6)
    workdir = Path(remote["workdir"])
    assert workdir.is_relative_to(mount), "the host trained on the paths it sees"
    here = roots["gcs"] / "artifacts" / workdir.relative_to(mount)
    assert Path(local["workdir"]).relative_to(roots["in_process"]) == here.relative_to(roots["gcs"])
    assert (here / "checkpoints" / str(EPOCHS)).is_dir(), "Orbax's checkpoint of the last step, where Dagster sees it"


def test_the_hosts_get_the_bootstrap_and_the_way_to_gcs_and_nothing_else(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("YOUTUBE_API_KEY", "sentinel-key")
    bootstrap = {"DAGSTER_PIPES_CONTEXT": "c", "DAGSTER_PIPES_MESSAGES": "m"}
    [single] = LocalProcessLauncher().host_environments(bootstrap)
    assert single.items() >= {**bootstrap, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}.items()
    assert "YOUTUBE_API_KEY" not in single and "KINETICS_JAX_DISTRIBUTED" not in single
    hosts = LocalProcessLauncher(hosts=3).host_environments(bootstrap)
    assert [host["JAX_PROCESS_ID"] for host in hosts] == ["0", "1", "2"]
    assert {host["JAX_COORDINATOR_ADDRESS"] for host in hosts} == {hosts[0]["JAX_COORDINATOR_ADDRESS"]}
    assert all(host["KINETICS_JAX_DISTRIBUTED"] == "1" and host["JAX_NUM_PROCESSES"] == "3" for host in hosts)


def test_the_hosts_get_the_run_s_folders_as_they_see_them():
    run = BenchmarkRun(shards="/var/k/cache/artifacts/benchmark/shards", workdir="/var/k/cache/artifacts2/w",
                       per_class=None)
    moved = on_hosts(run, {"/var/k/cache/artifacts": "/gcs/artifacts"})
    assert moved.shards == "/gcs/artifacts/benchmark/shards"
    assert moved.workdir == run.workdir, "a folder whose name only starts like an entry's is not under it"
    assert on_hosts(run, {}) == run


def test_the_tpu_vm_command_runs_the_entry_point_on_every_worker_and_rejects_bad_names():
    cli = {"--dagster-pipes-context": "eJyrVkrOz0nVz0nVz0ktLk5NUbJSqM3MS8xNVbIKzy_KTFGyUkrKz0", "--dagster-pipes-messages": "eJx"}
    launcher = TpuVmLauncher(tpu="i3d-v5e-32", zone="us-west4-a", project="kinetics-prod", remote_repo="/opt/kinetics")
    command = launcher.command(cli)
    assert command[:9] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "i3d-v5e-32", "--zone=us-west4-a",
                           "--project=kinetics-prod", "--worker=all"]
    [remote] = command[9:]
    assert remote.startswith("--command=")
    assert shlex.split(remote.removeprefix("--command=")) == [
        "env", "-C", "/opt/kinetics", "KINETICS_JAX_DISTRIBUTED=1", "/opt/kinetics/.venv/bin/python", "-m",
        ENTRY_POINT, "--dagster-pipes-context", cli["--dagster-pipes-context"],
        "--dagster-pipes-messages", cli["--dagster-pipes-messages"]]
    for bad in ({"tpu": "x; rm -rf ~"}, {"zone": "us west"}, {"project": "Kinetics"}):
        with pytest.raises(ValueError, match="invalid"):
            TpuVmLauncher(**{**launcher.model_dump(), **bad}).command(cli)
    with pytest.raises(ValueError, match="absolute"):
        TpuVmLauncher(**{**launcher.model_dump(), "remote_repo": "opt/kinetics"}).command(cli)


def test_the_gke_job_is_the_manifests_with_the_run_s_name_image_and_bootstrap():
    launcher = GkeTpuJobLauncher(image="us-docker.pkg.dev/p/kinetics/user-code:1")
    bootstrap = {"DAGSTER_PIPES_CONTEXT": "c", "DAGSTER_PIPES_MESSAGES": "m"}
    job = launcher.job("i3d-1a2b3c4d-100", bootstrap)
    kubernetes_validate.validate(job, "1.30", strict=True)
    [template] = [doc for doc in yaml.safe_load_all(Path(launcher.manifest).read_text()) if doc and doc["kind"] == "Job"]
    assert job["metadata"]["name"] == "i3d-1a2b3c4d-100" and job["spec"] == {
        **template["spec"], "template": job["spec"]["template"]}
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == launcher.image
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"KINETICS_JAX_DISTRIBUTED": "1", **bootstrap}
    assert container["command"][-2:] == ["-m", ENTRY_POINT]
    with pytest.raises(ValueError, match="invalid Job name"):
        launcher.job("i3d-../../etc", bootstrap)
