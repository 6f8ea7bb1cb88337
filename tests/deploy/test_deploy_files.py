"""deploy/ as CI can check it with no cluster and no registry: the Dockerfile through hadolint
and pasar's own rules, the compose file against the compose specification, the Kubernetes
manifests rendered by kustomize and validated against Kubernetes' schemas (offline: the
schemas ship in the kubernetes-validate wheel), and the gateway's nginx config by `nginx -t`."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError
from pasar_core.accounts.sources import parse_trusted_proxies
from pasar_core.settings import Settings

from tests.deploy.tools import DEPLOY, NGINX_DIR, ROOT, required, run, write_certificate

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.32"  # the oldest release the manifests promise to run on
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|CREDENTIAL|_KEY$|_KEYS$", re.I)


# --- Dockerfile -------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions, its FROM first; instructions before the first FROM are under
    the key ''."""
    result: dict[str, list[tuple[str, str]]] = {"": []}
    current = ""
    for word, rest in instructions(text):
        if word == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        result.setdefault(current, []).append((word, rest))
    return result


def parent_chain(all_stages: dict[str, list[tuple[str, str]]], name: str) -> list[str]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [name]
    while True:
        base = all_stages[chain[-1]][0][1].split(" AS ")[0].strip()
        if base not in all_stages:
            return chain
        chain.append(base)


def test_dockerfile_passes_hadolint() -> None:
    result = run(required("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("target", ["server", "worker"])
def test_each_image_runs_unprivileged_with_a_healthcheck_and_no_secrets(target: str) -> None:
    all_stages = stages(DOCKERFILE.read_text())
    chain = parent_chain(all_stages, target)
    assert len(chain) >= 2, "the image is built in more than one stage"
    inherited = [step for stage in reversed(chain) for step in all_stages[stage]]
    users = [rest for word, rest in inherited if word == "USER"]
    assert users, f"{target} sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"{target} runs as {users[-1]}"  # numeric: runAsNonRoot can check it
    assert int(uid) != 0
    healthchecks = [rest for word, rest in inherited if word == "HEALTHCHECK"]
    assert healthchecks
    assert "NONE" not in healthchecks[-1]
    probe = healthchecks[-1]
    if target == "server":
        assert "/healthz" in probe
    else:
        assert "pasar.worker_health" in probe
    assert any(word == "CMD" for word, _ in inherited)
    for word, rest in inherited:
        if word in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", rest)
            secrets = [name for name in names if SECRET_NAME.search(name)]
            assert not secrets, f"{word} {rest!r} bakes a secret into the image"


def test_every_base_image_is_pinned_to_a_release() -> None:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)$", text, re.M))
    all_stages = stages(text)
    for name, steps in all_stages.items():
        if not steps:
            continue
        image = steps[0][1].split(" AS ")[0].strip()
        if image in all_stages:
            continue  # FROM an earlier stage
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        repository, _, tag = image.partition("@")[0].rpartition(":")
        assert repository, f"stage {name}: {image}"
        assert tag, f"stage {name}: {image} has no tag"
        assert tag != "latest"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"stage {name}: {image} is not a patch release"


def test_the_worker_healthcheck_module_ships_in_the_package() -> None:
    assert (ROOT / "src" / "pasar" / "worker_health.py").exists()
    dockerignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    for needed in ("src", "core", "graphql", "plugins", "uv.lock", "pyproject.toml"):
        assert needed not in dockerignore


# --- compose ----------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    checker = required("check-jsonschema")
    result = run(checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_whole_system_and_holds_no_secret() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {
        "postgres", "redis", "migrate", "api-1", "api-2", "worker", "sandbox-worker", "gateway"
    }  # fmt: skip
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["sandbox-worker"]["command"][-2:] == ["--queue", "sandbox"]
    for name in ("api-1", "api-2", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key} in git"
    environment = services["api-1"]["environment"]
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
    mounts = [volume.split(":")[0] for volume in services["gateway"]["volumes"]]
    assert (COMPOSE.parent / mounts[0]).resolve() == NGINX_DIR
    upstream = (NGINX_DIR / "nginx.conf").read_text()
    assert "server api-1:8000" in upstream
    assert "server api-2:8000" in upstream


# --- Kubernetes -------------------------------------------------------------------------------


def rendered(directory: Path) -> list[dict[str, Any]]:
    result = run(required("kubectl"), "kustomize", str(directory))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def resource_files() -> Iterator[Path]:
    """Every manifest file (kustomizations and partial patches aside)."""
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml" and path.name != "config.yaml":
            yield path


@pytest.mark.parametrize("path", list(resource_files()), ids=lambda p: str(p.relative_to(K8S)))
def test_each_manifest_file_matches_the_kubernetes_schemas(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        validate(document)


def test_the_validator_rejects_a_broken_manifest() -> None:
    """The check can fail: a misspelt field and a wrong type are refused."""
    [deployment, _] = list(yaml.safe_load_all((K8S / "base" / "api.yaml").read_text()))
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["replica"] = 2
    with pytest.raises(ValidationError, match="replica"):
        validate(misspelt)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    with pytest.raises(ValidationError):
        validate(wrong_type)


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_kustomize_renders_valid_manifests(overlay: str) -> None:
    documents = rendered(K8S / overlay)
    for document in documents:
        validate(document)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in documents)
    for expected in (
        "ConfigMap/pasar-config", "Deployment/pasar-api", "Deployment/pasar-worker",
        "Deployment/pasar-sandbox-worker", "Service/pasar-api", "Job/pasar-migrate",
        "HorizontalPodAutoscaler/pasar-api", "HorizontalPodAutoscaler/pasar-worker",
        "PodDisruptionBudget/pasar-api", "PodDisruptionBudget/pasar-worker",
    ):  # fmt: skip
        assert expected in kinds
    assert not [d for d in documents if d["kind"] == "Secret"], "secrets are created outside git"
    if overlay != "base":
        assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"} == {
            "pasar"
        }
        assert "Ingress/pasar" in kinds


def workloads(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] in ("Deployment", "Job")]


def test_probes_rollouts_and_pod_security() -> None:
    documents = rendered(K8S / "overlays" / "production")
    by_name = {d["metadata"]["name"]: d for d in workloads(documents)}
    api = by_name["pasar-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    worker = by_name["pasar-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["livenessProbe"]["exec"]["command"] == ["python", "-m", "pasar.worker_health"]
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    for document in workloads(documents):
        spec = document["spec"]
        if document["kind"] == "Deployment":
            assert spec["progressDeadlineSeconds"] <= 600  # a stuck rollout is marked failed
            assert spec["revisionHistoryLimit"] >= 2  # something to roll back to
            assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = spec["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            if container["name"] == "docker":  # the sandbox workers' Docker daemon sidecar
                continue
            security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert security["runAsNonRoot"] is True
            assert security["runAsUser"] != 0
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            sources = [next(iter(s.values()))["name"] for s in container["envFrom"]]
            assert sources == ["pasar-config", "pasar-secrets"]
    for key in config:
        assert not SECRET_NAME.search(key), f"{key} belongs in the Secret"
    drain = int(config["PASAR_DRAIN_S"])
    for name in ("pasar-api", "pasar-worker"):
        grace = by_name[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > drain + 10  # drain, then the server stopping its workers


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_metrics_are_scraped_from_the_pods_never_through_the_ingress() -> None:
    documents = rendered(K8S / "overlays" / "production")
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    settings = Settings.from_env({**config, "PASAR_DATA_DIR": "/var/lib/pasar"})
    assert settings.metrics_port is not None  # so the public port answers 404 for /metrics
    port = settings.metrics_port
    deployments = by_kind(documents, "Deployment")
    for name in ("pasar-api", "pasar-worker"):
        template = deployments[name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        (container,) = template["spec"]["containers"]
        assert {"name": "metrics", "containerPort": port} in container["ports"]
    services = by_kind(documents, "Service")
    for service in services.values():
        for service_port in service["spec"]["ports"]:
            assert service_port["targetPort"] not in ("metrics", port), service
    (ingress,) = by_kind(documents, "Ingress").values()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            (target,) = [p for p in services[backend["name"]]["spec"]["ports"]
                         if p["name"] == backend["port"]["name"]]  # fmt: skip
            assert target["targetPort"] == "http"  # the public port, where /metrics is 404
    policies = by_kind(documents, "NetworkPolicy")
    for rule in policies["pasar-api-ingress"]["spec"]["ingress"]:
        namespaces = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      for f in rule["from"]}  # fmt: skip
        ports = {p["port"] for p in rule["ports"]}
        assert (namespaces, ports) in (({"ingress-nginx"}, {8000}), ({"monitoring"}, {port}))
    (worker_rule,) = policies["pasar-worker-metrics"]["spec"]["ingress"]
    assert [p["port"] for p in worker_rule["ports"]] == [port]


def test_prometheus_scrapes_each_pod_on_its_metrics_port() -> None:
    """deploy/observability/prometheus-scrape.yml keeps the annotated pods and rewrites their
    address to the annotated port (the relabelling applied here as Prometheus applies it)."""
    (job,) = yaml.safe_load((DEPLOY / "observability" / "prometheus-scrape.yml").read_text())[
        "scrape_configs"
    ]
    documents = rendered(K8S / "overlays" / "production")
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["pasar"]
    (address,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    regex = address["regex"]
    template = by_kind(documents, "Deployment")["pasar-api"]["spec"]["template"]
    port = template["metadata"]["annotations"]["prometheus.io/port"]
    found = re.fullmatch(regex, f"10.244.3.7:8000;{port}")
    assert found is not None
    target = address["replacement"].replace("$1", found[1]).replace("$2", found[2])
    assert target == f"10.244.3.7:{port}"


def test_only_the_ingress_controller_is_a_trusted_proxy() -> None:
    base = next(d for d in rendered(K8S / "base") if d["kind"] == "ConfigMap")["data"]
    assert base["PASAR_TRUSTED_PROXIES"] == ""  # none believed until an overlay names them
    production = rendered(K8S / "overlays" / "production")
    config = next(d for d in production if d["kind"] == "ConfigMap")["data"]
    settings = Settings.from_env({**config, "PASAR_DATA_DIR": "/var/lib/pasar"})
    blocks = parse_trusted_proxies(settings.trusted_proxies)
    assert blocks
    for block in blocks:
        assert block.prefixlen >= (24 if block.version == 4 else 120), block  # not the pod network


def test_rollout_script_parses() -> None:
    result = run("bash", "-n", str(K8S / "rollout.sh"))
    assert result.returncode == 0, result.stderr


# --- nginx ------------------------------------------------------------------------------------


def test_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    """The compose gateway's config as it is, its upstream hosts aside (nginx resolves them
    while testing: compose's service names become loopback addresses here)."""
    nginx = required("nginx")
    config_dir = tmp_path / "nginx"
    shutil.copytree(NGINX_DIR, config_dir)
    write_certificate(config_dir / "tls")
    main = config_dir / "nginx.conf"
    text = main.read_text()
    text, count = re.subn(r"server api-(\d):8000", r"server 127.0.0.\1:8000", text)
    assert count == 2
    main.write_text(text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path / 'nginx.pid'};"))
    result = run(nginx, "-t", "-e", "stderr", "-c", str(main))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_catches_a_broken_config(tmp_path: Path) -> None:
    nginx = required("nginx")
    config_dir = tmp_path / "nginx"
    shutil.copytree(NGINX_DIR, config_dir)
    write_certificate(config_dir / "tls")
    proxy = config_dir / "pasar" / "proxy.conf"
    proxy.write_text(proxy.read_text().replace("zone=pasar_requests", "zone=no_such_zone", 1))
    main = config_dir / "nginx.conf"
    main.write_text(re.sub(r"server api-(\d):8000", r"server 127.0.0.\1:8000", main.read_text()))
    result = run(nginx, "-t", "-e", "stderr", "-c", str(main))
    assert result.returncode != 0
    assert "no_such_zone" in result.stderr
