"""deploy/ checked without a cluster: what can be validated here is.

Protects: the user-code image installs exactly what `make` installs (the Dockerfile's install steps are the
Makefile's, same uv version, same lock); deploy/dagster.yaml loads as an instance config and every class it names
(K8sRunLauncher, GCSComputeLogManager, PostgreSQL storage) accepts its config; deploy/values.yaml uses only keys
the official chart's values.schema.json (a copy in deploy/schemas/) defines and validates against it, with its
Kubernetes references resolved from kubernetes-validate's bundled schemas; the chart's instance settings equal
deploy/dagster.yaml's; the Kubernetes manifests validate (strict) and their quota leaves room for the run queue;
the TPU training Job has one pod per host of SCALING.md's 32-chip slice, reachable through its headless Service,
runs the Pipes entry point in the image's venv multi-host, and the run pods' service account may launch it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._config import process_config
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_SCHEMAS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
K8S_VERSION = "1.30"  # the GKE versions in deploy/README.md's range


def _makefile_install_steps() -> list[str]:
    """The venv recipe's commands with the Makefile's variables expanded (the stamp's `touch` is bookkeeping)."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) [:?]?= (.+)$", text, re.MULTILINE))
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", text, re.MULTILINE).group(1)
    steps = []
    for line in recipe.splitlines():
        command = line.strip().split(" || ")[-1]  # `test -x .venv/bin/python || python3 -m venv .venv`
        while "$(" in command:
            command = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], command)
        if not command.startswith("touch "):
            steps.append(command)
    return steps


def _dockerfile_install_steps() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    runs = [re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], command.strip())
            for command in re.findall(r"^RUN (.+)$", text, re.MULTILINE)]
    return [command for command in runs if "venv" in command]


def test_the_image_installs_what_make_installs():
    make, docker = _makefile_install_steps(), _dockerfile_install_steps()
    assert len(make) == 4 and "deploy/requirements.lock" in make[2]
    assert docker == make


def test_the_production_instance_config_loads_with_every_class_it_names(monkeypatch):
    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", "kinetics")  # set by the chart in the pods
    monkeypatch.setenv("KINETICS_GCS_BUCKET", "kinetics-bucket")
    config, _ = dagster_instance_config(str(DEPLOY))
    for section in ("run_launcher", "compute_logs"):
        entry = config[section]
        klass = getattr(importlib.import_module(entry["module"]), entry["class"])
        result = process_config(klass.config_type(), entry["config"])
        assert result.success, f"{section} ({entry['class']}): {result.errors}"
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["compute_logs"]["class"] == "GCSComputeLogManager"
    assert set(config["storage"]["postgres"]["postgres_db"]) >= {"hostname", "username", "password", "db_name"}
    assert all(value == {"env": value.get("env")} for key, value in config["storage"]["postgres"]["postgres_db"].items()
               if key in ("hostname", "username", "password", "db_name")), "connection settings come from env"


def _schema() -> dict:
    return json.loads((DEPLOY / "schemas" / "dagster-helm-values.schema.json").read_text())


def _registry() -> Registry:
    """The chart's Kubernetes references, offline: the definitions kubernetes-validate ships."""
    version = kubernetes_validate.latest_version()
    definitions = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local/_definitions.json", version)
    # The chart points at #/definitions/..., the bundled file keeps them under $defs (and refers to #/$defs/...).
    contents = {"$schema": "http://json-schema.org/draft-07/schema#", "$defs": definitions["$defs"],
                "definitions": definitions["$defs"]}
    return Registry().with_resource(K8S_SCHEMAS, Resource.from_contents(contents))


def _undefined_keys(values, node: dict, schema: dict, path: str) -> list[str]:
    """Keys of `values` that the schema does not define, walking properties through local $refs and anyOfs."""
    if not isinstance(values, dict) and not isinstance(values, list):
        return []
    while "$ref" in node and node["$ref"].startswith("#/definitions/"):
        node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
    if "$ref" in node:  # a Kubernetes object: jsonschema validates it against the Kubernetes schema
        return []
    if isinstance(values, list) and "anyOf" not in node:
        return [bad for i, item in enumerate(values) for bad in _undefined_keys(item, node.get("items", {}), schema, f"{path}[{i}]")]
    for option in node.get("anyOf", []):  # the option of the value's own type
        resolved = option
        if "$ref" in option and option["$ref"].startswith("#/definitions/"):
            resolved = schema["definitions"][option["$ref"].rsplit("/", 1)[1]]
        if resolved.get("type") == ("array" if isinstance(values, list) else "object"):
            return _undefined_keys(values, {**option, **{k: v for k, v in node.items() if k != "anyOf"}}, schema, path)
    properties = node.get("properties")
    if not properties and node.get("type") == "object":
        return []  # free-form by the chart's design (additionalInstanceConfig, runMonitoring, ...)
    bad = []
    for key, value in values.items():
        if key not in (properties or {}):
            if not isinstance(node.get("additionalProperties"), dict):
                bad.append(f"{path}.{key}")
            continue
        bad += _undefined_keys(value, properties[key], schema, f"{path}.{key}")
    return bad


def _without_required(node):
    """The chart merges these values over its own defaults, so `required` holds for the merge, not this file."""
    if isinstance(node, dict):
        return {key: _without_required(value) for key, value in node.items() if key != "required"}
    if isinstance(node, list):
        return [_without_required(item) for item in node]
    return node


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def test_the_helm_values_use_only_keys_the_chart_defines():
    schema = _schema()
    assert _undefined_keys(_values(), schema, schema, "values") == []
    assert _undefined_keys({"dagsterDaemon": {"runCoordinator": {"enabled": False}, "poolz": 1}}, schema, schema,
                           "values") == ["values.dagsterDaemon.poolz"], "the key check must catch a made-up key"


def test_the_helm_values_validate_against_the_chart_schema():
    validator = jsonschema.Draft7Validator(_without_required(_schema()), registry=_registry())
    errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(_values())]
    assert errors == []
    broken = {**_values(), "runLauncher": {"type": "K8sRunLauncher", "config": {"k8sRunLauncher": {"imagePullPolicy": "Sometimes"}}}}
    assert any("Sometimes" in error.message for error in validator.iter_errors(broken))


def test_the_chart_renders_the_same_instance_as_deploy_dagster_yaml():
    values, instance = _values(), yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert values["additionalInstanceConfig"] == {key: instance[key] for key in ("concurrency", "run_queue")}
    assert values["dagsterDaemon"]["runCoordinator"] == {"enabled": False}, \
        "a chart-rendered run_coordinator conflicts with run_queue and concurrency > runs"
    assert values["telemetry"] == instance["telemetry"]
    assert values["global"]["serviceAccountName"] == instance["run_launcher"]["config"]["service_account_name"]
    assert values["global"]["postgresqlSecretName"] == instance["run_launcher"]["config"]["postgres_password_secret"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["computeLogManager"]["config"]["gcsComputeLogManager"]["prefix"] == instance["compute_logs"]["config"]["prefix"]


@pytest.mark.parametrize("manifest", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda path: path.name)
def test_the_kubernetes_manifests_validate(manifest):
    documents = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**documents[0], "spec": {"replicas": "two"}}, K8S_VERSION, strict=True)


def test_the_namespace_quota_leaves_room_for_the_run_queue():
    [quota] = [doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / "namespace.yaml").read_text())
               if doc["kind"] == "ResourceQuota"]
    runs = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]["runs"]["max_concurrent_runs"]
    run_cpu = int(_values()["runLauncher"]["config"]["k8sRunLauncher"]["resources"]["requests"]["cpu"])
    assert int(quota["spec"]["hard"]["pods"]) >= runs + 3, "the webserver, the daemon and the code server too"
    assert int(quota["spec"]["hard"]["requests.cpu"]) >= runs * run_cpu


def test_the_tpu_job_spans_the_slice_runs_the_entry_point_and_the_run_pods_may_launch_it():
    from resources.tpu import ENTRY_POINT, MULTI_HOST_ENV

    documents = {doc["kind"]: doc for name in ("tpu-training.yaml", "tpu-training-job.yaml")
                 for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text())}
    assert list(yaml.safe_load_all((DEPLOY / "k8s" / "tpu-training-job.yaml").read_text())) == [documents["Job"]], \
        "the template alone in its file: applying tpu-training.yaml sets up, it does not start a training"
    job, service, binding = documents["Job"], documents["Service"], documents["RoleBinding"]
    pod = job["spec"]["template"]
    [container] = pod["spec"]["containers"]
    rows, columns = map(int, pod["spec"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"].split("x"))
    assert rows * columns == 32, "SCALING.md's slice"
    hosts = rows * columns // int(container["resources"]["limits"]["google.com/tpu"])
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == job["spec"]["parallelism"] == hosts
    assert pod["spec"]["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    workdir = re.search(r"^WORKDIR (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert container["command"] == [f"{workdir}/.venv/bin/python", "-m", ENTRY_POINT]
    assert {"name": MULTI_HOST_ENV, "value": "1"} in container["env"]
    [namespace] = [doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / "namespace.yaml").read_text())
                   if doc["kind"] == "Namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": _values()["global"]["serviceAccountName"],
                                    "namespace": namespace["metadata"]["name"]}]
    assert {"create", "get", "delete"} <= set(documents["Role"]["rules"][0]["verbs"])
