"""I3D training on a TPU slice through Dagster Pipes over GCS (`PipesGCSAccelerator`), and how the slice is started
and watched: a TPU VM over `gcloud ... ssh --worker=all`, a GKE TPU slice as an Indexed Job
(deploy/k8s/tpu-training-job.yaml), or local processes standing in for a slice's hosts.

A module of its own so that only profiles that train on TPUs import dagster-gcp. Each launcher starts `python -m kinetics_assets.benchmark.pipes_train` on every host of the slice with the Pipes
bootstrap parameters and nothing else from the Dagster process: no environment, no credentials (a TPU VM or a GKE
pod has its own service account), and returns when every host has exited, raising if one failed. Every command
is an argv list; names that reach a command line or a manifest are validated first.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import yaml
from dagster_gcp import GCSResource
from pydantic import Field

from resources.accelerator import Accelerator

# Dagster's own Pipes session calls a preview method of every message reader (`expected_writer_count`) and warns
# about it at each run; we call nothing in preview. Only that warning is silenced.
warnings.filterwarnings("ignore", message=r"Function `PipesMessageReader.expected_writer_count` is currently in "
                        r"preview", category=dg.PreviewWarning)

if TYPE_CHECKING:
    from kinetics_assets.benchmark.run import BenchmarkRun

ENTRY_POINT = "kinetics_assets.benchmark.pipes_train"
MULTI_HOST_ENV = "KINETICS_JAX_DISTRIBUTED"  # "1": the entry point joins the slice (jax.distributed.initialize)
# What a local stand-in host inherits from the Dagster process: how to run Python and reach GCS (the emulator
# here; a real host finds its credentials on its metadata server), and JAX's platform choice. Nothing else.
LOCAL_PASS_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
                  "JAX_PLATFORMS", "XLA_FLAGS")
GCP_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # TPU names, zones, projects, Kubernetes names
DEFAULT_MANIFEST = str(Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "tpu-training-job.yaml")


def _checked(name: str, what: str) -> str:
    if not GCP_NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: lowercase letters, digits and '-', at most 63")
    return name


def _cli_arguments(bootstrap: Mapping[str, str]) -> list[str]:
    """`{"--dagster-pipes-context": value, ...}` as argv items."""
    return [item for flag, value in bootstrap.items() for item in (flag, value)]


class TrainingLauncher(dg.ConfigurableResource):
    """Starts the entry point on every host of a slice and waits for all of them."""

    def launch(self, context: dg.AssetExecutionContext, env: Mapping[str, str], cli: Mapping[str, str]) -> None:
        """`env`: the Pipes bootstrap as environment variables; `cli`: the same as command-line arguments."""
        raise NotImplementedError


class LocalProcessLauncher(TrainingLauncher):
    """`hosts` local processes in the roles of a slice's hosts (a JAX coordinator on 127.0.0.1 when more than one).

    They share this machine's disk, which stands in for the bucket the slice's hosts mount (see deploy/README.md):
    the run's shards and workdir paths mean the same on both sides, nothing else is shared."""

    hosts: int = Field(default=1, ge=1, description="processes, each one host of the stand-in slice")
    timeout_s: float = Field(default=1800.0, gt=0, description="longest a run may take before it is killed")

    def host_environments(self, env: Mapping[str, str]) -> list[dict[str, str]]:
        """Each host's whole environment: the allowed part of ours, the bootstrap, and its place in the slice."""
        base = {key: os.environ[key] for key in LOCAL_PASS_ENV if key in os.environ} | dict(env)
        if self.hosts == 1:
            return [base]
        with socket.socket() as probe:  # a free port for the coordinator
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return [base | {MULTI_HOST_ENV: "1", "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                        "JAX_NUM_PROCESSES": str(self.hosts), "JAX_PROCESS_ID": str(index)}
                for index in range(self.hosts)]

    def launch(self, context, env, cli) -> None:
        command = [sys.executable, "-m", ENTRY_POINT]
        hosts = [subprocess.Popen(command, env=host_env) for host_env in self.host_environments(env)]
        deadline = time.monotonic() + self.timeout_s
        try:
            codes = [host.wait(timeout=max(1.0, deadline - time.monotonic())) for host in hosts]
        finally:
            for host in hosts:
                if host.poll() is None:
                    host.kill()
                    host.wait()
        if any(codes):
            raise RuntimeError(f"training hosts exited with {codes} ({' '.join(command)})")


class TpuVmLauncher(TrainingLauncher):
    """An existing Cloud TPU VM slice: the entry point on all its workers through `gcloud compute tpus tpu-vm ssh`.

    The repository and its venv are at `remote_repo` on every worker (deploy/README.md, TPU training); the hosts
    find one another from the TPU metadata (`jax.distributed.initialize()` without arguments)."""

    tpu: str = Field(description="TPU VM name")
    zone: str = Field(description="its zone, e.g. us-central2-b")
    project: str = Field(description="GCP project id")
    remote_repo: str = Field(default="/opt/kinetics", description="checkout with its .venv on every worker")

    def command(self, cli: Mapping[str, str]) -> list[str]:
        """The argv that runs the entry point on every worker (the remote command is quoted for the remote shell)."""
        if not self.remote_repo.startswith("/"):
            raise ValueError(f"remote_repo must be an absolute path, not {self.remote_repo!r}")
        remote = ["env", "-C", self.remote_repo, f"{MULTI_HOST_ENV}=1", f"{self.remote_repo}/.venv/bin/python", "-m",
                  ENTRY_POINT, *_cli_arguments(cli)]
        return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", _checked(self.tpu, "TPU name"),
                f"--zone={_checked(self.zone, 'zone')}", f"--project={_checked(self.project, 'project')}",
                "--worker=all", f"--command={shlex.join(remote)}"]

    def launch(self, context, env, cli) -> None:
        subprocess.run(self.command(cli), check=True)


class GkeTpuJobLauncher(TrainingLauncher):
    """A GKE TPU slice: deploy/k8s/tpu-training-job.yaml's Indexed Job (one pod a host), created per run and watched
    until it succeeds or fails; deleted if the Dagster run is interrupted."""

    namespace: str = Field(default="kinetics")
    image: str = Field(description="the user-code image (deploy/Dockerfile) with libtpu")
    manifest: str = Field(default=DEFAULT_MANIFEST, description="YAML whose Job document is the template")
    poll_interval_s: float = Field(default=10.0, gt=0)

    def job(self, name: str, env: Mapping[str, str]) -> dict:
        """The template's Job named `name`, running `image` with the Pipes bootstrap in every host's environment."""
        documents = [doc for doc in yaml.safe_load_all(Path(self.manifest).read_text()) if doc]
        [template] = [doc for doc in documents if doc["kind"] == "Job"]
        job = copy.deepcopy(template)
        job["metadata"]["name"] = _checked(name, "Job name")
        [container] = job["spec"]["template"]["spec"]["containers"]
        container["image"] = self.image
        container["env"] = [item for item in container.get("env", []) if item["name"] not in env] + \
            [{"name": key, "value": value} for key, value in env.items()]
        return job

    def launch(self, context, env, cli) -> None:
        from kubernetes import client, config

        config.load_incluster_config()  # the run pod's service account (deploy/README.md)
        batch = client.BatchV1Api()
        body = self.job(f"i3d-{context.run_id[:8]}-{context.partition_key}".lower(), env)
        name = body["metadata"]["name"]
        batch.create_namespaced_job(self.namespace, body)
        context.log.info(f"TPU Job {self.namespace}/{name} created")
        try:
            while True:
                status = batch.read_namespaced_job_status(name, self.namespace).status
                conditions = {item.type: item.status for item in status.conditions or []}
                if conditions.get("Complete") == "True":
                    return
                if conditions.get("Failed") == "True":
                    raise RuntimeError(f"TPU Job {self.namespace}/{name} failed: kubectl -n {self.namespace} "
                                       f"logs job/{name}")
                time.sleep(self.poll_interval_s)
        except dg.DagsterExecutionInterruptedError:
            batch.delete_namespaced_job(name, self.namespace, propagation_policy="Foreground")
            raise


PIPES_BUCKET_ENV = "KINETICS_PIPES_BUCKET"


class PipesGCSAccelerator(Accelerator):
    """Training on a TPU slice (or a stand-in) that shares nothing with the Dagster run but a bucket: the Pipes
    context is a blob it reads (`PipesGCSContextInjector`), its logs and materialization are message chunks it
    writes and this run polls (`PipesGCSMessageReader`), both under `gs://{bucket}/{prefix}`. `launcher` starts and
    watches the hosts. The run's shards and workdir reach them through `host_paths` (deploy/README.md, TPU
    training): e.g. the artifact store's local copy of `artifacts/` here is `/gcs/artifacts`, the bucket's mount,
    there; a path under no entry is passed as it is."""

    gcs: GCSResource
    launcher: TrainingLauncher
    bucket: str = Field(description=f"Pipes bucket; from the environment: EnvVar({PIPES_BUCKET_ENV!r})")
    prefix: str = Field(default="pipes/", description="key prefix of the context blobs and message chunks")
    poll_interval_s: float = Field(default=5.0, gt=0, description="seconds between reads of new message chunks")
    host_paths: dict[str, str] = Field(default_factory=dict,
                                       description="folder here -> the same files' folder on the hosts")

    def train(self, context: dg.AssetExecutionContext, run: BenchmarkRun) -> dg.MaterializeResult:
        from dagster_gcp.pipes import PipesGCSContextInjector

        client = self.gcs.get_client()
        with dg.open_pipes_session(
            context=context,
            context_injector=PipesGCSContextInjector(bucket=self.bucket, client=client,
                                                     key_prefix=f"{self.prefix}context/"),
            message_reader=_prefixed_message_reader(self.bucket, f"{self.prefix}messages/", client,
                                                    self.poll_interval_s),
            extras={"run": dataclasses.asdict(on_hosts(run, self.host_paths))},
        ) as session:
            self.launcher.launch(context, session.get_bootstrap_env_vars(), session.get_bootstrap_cli_arguments())
        return dg.PipesClientCompletedInvocation(session).get_materialize_result()


def on_hosts(run: BenchmarkRun, host_paths: Mapping[str, str]) -> BenchmarkRun:
    """`run` with its shards and workdir as the hosts see them: under the host folder of the first entry of
    `host_paths` whose folder here holds them."""
    def moved(path: str) -> str:
        for here, there in host_paths.items():
            if Path(path).is_relative_to(here):
                return str(Path(there) / Path(path).relative_to(here))
        return path

    return dataclasses.replace(run, shards=moved(run.shards), workdir=moved(run.workdir))


def _prefixed_message_reader(bucket: str, prefix: str, client, interval: float):
    """dagster-gcp's message reader with its chunks under `prefix` (its own keys start at the bucket's root)."""
    from dagster_gcp.pipes import PipesGCSMessageReader

    class PrefixedGCSMessageReader(PipesGCSMessageReader):
        @contextmanager
        def get_params(self) -> Iterator[dict]:
            with super().get_params() as params:
                yield {**params, "key_prefix": prefix + params["key_prefix"]}

    return PrefixedGCSMessageReader(bucket=bucket, client=client, interval=interval)
