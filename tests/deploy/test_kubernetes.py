"""deploy/k8s: every overlay renders, validates against the Kubernetes and operator
schemas offline, and says what the deployment promises: probes at endpoints that
exist, requests and limits, a PodDisruptionBudget and an autoscaler per service, the
migrations as a Job, quorum queues, Secrets referenced and never inlined, and network
policies under which only the gateway is reachable and the services reach only
PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from pathways.bootstrap import SERVICES
from pathways.migrate_job import settings_class
from services.gateway.settings import GatewaySettings
from tests.deploy import envcheck, netpol
from tests.deploy.fake_kubectl import FakeCluster
from tests.deploy.kustomize import pod_specs, render, split_image
from tests.deploy.schemas import SchemaError, validate

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
# Secrets the operators make themselves (CloudNativePG: enableSuperuserAccess) and the
# certificate the operator of the cluster provides (docs/deploy.md, "Secrets").
OPERATOR_SECRETS = {("pathways-db-superuser", "username"), ("pathways-db-superuser", "password")}
TLS_SECRETS = {"pathways-gateway-tls"}


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / "overlays" / overlay))


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(o) for o in rendered(overlay) if o["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects(overlay, kind) if o["metadata"]["name"] == name]
    return found


def namespace_of(overlay: str) -> str:
    (namespace,) = objects(overlay, "Namespace")
    return namespace["metadata"]["name"]


def workloads(overlay: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] in {"Deployment", "Job"}]


def containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    (pod,) = pod_specs(workload)
    return [*pod.get("containers", []), *(pod.get("initContainers", []) if init else [])]


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    (container,) = [c for c in containers(deployment, init=False) if c["name"] == name]
    return container


@functools.cache
def fake_secrets(overlay: str) -> dict[str, dict[str, str]]:
    """The Secrets deploy/k8s/create-secrets.sh makes, plus the operator's superuser."""
    import tempfile

    cluster = FakeCluster(Path(tempfile.mkdtemp(prefix="pathways-secrets-")))
    namespace = namespace_of(overlay)
    result = cluster.create_secrets(
        namespace, BACKUP_ACCESS_KEY_ID="AKIAEXAMPLE", BACKUP_ACCESS_SECRET_KEY="s3cr3t"
    )
    assert result.returncode == 0, result.stderr
    secrets = cluster.secrets(namespace)
    secrets["pathways-db-superuser"] = {"username": "postgres", "password": "superpw"}
    return secrets


def resolve_env(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = one(overlay, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    secrets = fake_secrets(overlay)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = one(overlay, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            raise AssertionError(f"unsupported env source {item}")
    return env


def env_names_of(overlay: str, container: dict[str, Any]) -> set[str]:
    return set(resolve_env(overlay, container))


# --- rendering and schemas -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_into_its_own_namespace(overlay: str) -> None:
    namespace = namespace_of(overlay)
    for obj in rendered(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pathways"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_against_its_schema(overlay: str) -> None:
    failures = []
    for obj in rendered(overlay):
        try:
            validate(obj)
        except SchemaError as exc:
            failures.append(str(exc))
    assert not failures


def test_the_recovery_example_validates() -> None:
    for obj in yaml.safe_load_all((K8S / "examples" / "pitr-restore.yaml").read_text()):
        validate(obj)


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        (
            "Deployment",
            lambda o: o["spec"]["template"]["spec"].update(servicAccountName="x"),
            "servicAccountName",
        ),
        (
            "Deployment",
            lambda o: main_container(o).update(resources={"limits": {"cpu": []}}),
            "limits",
        ),
        ("Cluster", lambda o: o["spec"].update(instance=3), "instance"),
        ("Cluster", lambda o: o["spec"].update(primaryUpdateStrategy="whenever"), "whenever"),
        ("Cluster", lambda o: o["spec"]["backup"].update(retentionPolicy="30 days"), "30 days"),
        ("RabbitmqCluster", lambda o: o["spec"].update(replicas="three"), "three"),
        ("RabbitmqCluster", lambda o: o["metadata"].update(labelz={}), "labelz"),
        ("Permission", lambda o: o["spec"].pop("vhost"), "vhost"),
        ("ScheduledBackup", lambda o: o["spec"].update(method="tape"), "tape"),
        ("NetworkPolicy", lambda o: o["spec"].update(podselector={}), "podselector"),
    ],
)
def test_the_schema_checks_catch_mistakes(kind: str, mutate, message: str) -> None:
    obj = objects("production", kind)[0]
    mutate(obj)
    with pytest.raises(SchemaError, match=re.escape(message)):
        validate(obj)


# --- workloads ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_deployment_per_service_running_that_service(overlay: str) -> None:
    deployments = {d["metadata"]["name"]: d for d in objects(overlay, "Deployment")}
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        container = main_container(deployment)
        assert container["args"] == [service]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert netpol.selects(deployment["spec"]["selector"], labels)
        assert labels["pathways.io/role"] == "app"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_point_at_endpoints_the_service_has(service: str) -> None:
    deployment = one("production", "Deployment", service)
    container = main_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/ready"
    assert liveness["path"] == "/health"
    startup = container.get("startupProbe", {}).get("httpGet")
    probes = [readiness, liveness, *([startup] if startup else [])]
    env = resolve_env("production", container)
    for probe in probes:
        assert ports[probe["port"]] == int(env[f"{service.upper()}_PORT"])
    for probe in probes:
        assert serves(service, probe["path"]), f"{service} has no route {probe['path']}"


@functools.cache
def service_app(service: str):
    """The service's real app, built (settings, routers) but not started."""
    import importlib

    module = importlib.import_module(f"services.{service}.app")
    with envcheck.isolated_environ({}):
        return module.create_app(settings_class(service)())


def serves(service: str, path: str) -> bool:
    """Does the app route a GET of ``path`` to an endpoint (as a request would be)?"""
    from starlette.routing import Match

    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    return any(
        route.matches(scope)[0] == Match.FULL for route in service_app(service).router.routes
    )


def test_the_route_check_would_notice_a_missing_endpoint() -> None:
    assert serves("referrals", "/ready")
    assert not serves("referrals", "/readyz")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for workload in workloads(overlay):
        for container in containers(workload):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), (
                    f"{workload['metadata']['name']}/{container['name']} lacks {kind}"
                )
    for kind in ("Cluster", "RabbitmqCluster"):
        (infra,) = objects(overlay, kind)
        assert {"requests", "limits"} <= set(infra["spec"]["resources"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_and_read_only(overlay: str) -> None:
    for workload in workloads(overlay):
        (pod,) = pod_specs(workload)
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 1000, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False, name
        # Service links would set e.g. REFERRALS_PORT=tcp://... : a real setting's name.
        assert pod["enableServiceLinks"] is False, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_an_autoscaler_and_a_disruption_budget(overlay: str) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in objects(overlay, "HorizontalPodAutoscaler")
    }
    pdbs = objects(overlay, "PodDisruptionBudget")
    for service in SERVICES:
        deployment = one(overlay, "Deployment", service)
        hpa = hpas[service]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs if netpol.selects(p["spec"]["selector"], labels)]
        assert len(covering) == 1, service
        budget = covering[0]["spec"]
        # A drain may take pods, but never all of them at once.
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable", 0) >= 1


def test_production_has_no_single_point_of_failure() -> None:
    for hpa in objects("production", "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 2, hpa["metadata"]["name"]
    (cluster,) = objects("production", "Cluster")
    assert cluster["spec"]["instances"] >= 3
    assert cluster["spec"]["affinity"]["podAntiAffinityType"] == "required"
    assert cluster["spec"]["postgresql"]["synchronous"]["number"] >= 1
    (rabbit,) = objects("production", "RabbitmqCluster")
    assert rabbit["spec"]["replicas"] == 3
    anti = rabbit["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert (
        anti[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/name"]
        == rabbit["metadata"]["name"]
    )
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"


def test_dev_is_small() -> None:
    assert one("dev", "Cluster", "pathways-db")["spec"]["instances"] == 1
    assert one("dev", "RabbitmqCluster", "pathways-mq")["spec"]["replicas"] == 1
    assert all(h["spec"]["minReplicas"] == 1 for h in objects("dev", "HorizontalPodAutoscaler"))


# --- images --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pathways_container_runs_the_release_image(overlay: str) -> None:
    images = {c["image"] for w in workloads(overlay) for c in containers(w)}
    assert len(images) == 1, images
    name, tag, digest = split_image(images.pop())
    assert name != "pathways" or overlay == "dev", "the overlay must name the registry"
    assert digest or (tag and tag != "latest")


def test_infrastructure_images_are_pinned() -> None:
    cluster = one("production", "Cluster", "pathways-db")
    assert re.search(r":17\.\d+-.*@sha256:[0-9a-f]{64}$", cluster["spec"]["imageName"])
    rabbit = one("production", "RabbitmqCluster", "pathways-mq")
    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+(-management)?", rabbit["spec"]["image"])


# --- the migration Job -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_a_job_with_what_the_job_reads(overlay: str) -> None:
    job = one(overlay, "Job", "migrate")
    (container,) = containers(job)
    assert container["args"] == ["migrate"]
    (pod,) = pod_specs(job)
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
    env = resolve_env(overlay, container)
    assert set(env) <= envcheck.migrate_env_names()
    cluster = one(overlay, "Cluster", "pathways-db")
    admin = make_url(env["PATHWAYS_ADMIN_DSN"])
    assert admin.host == f"{cluster['metadata']['name']}-rw"
    assert env["PATHWAYS_ADMIN_USER"] == "postgres"
    # The job logs in as each service to migrate it: the services' own URLs.
    for service in SERVICES:
        deployment_env = resolve_env(overlay, main_container(one(overlay, "Deployment", service)))
        name = f"{service.upper()}_DATABASE_URL"
        assert env[name] == deployment_env[name]


@pytest.mark.parametrize("service", SERVICES)
def test_new_pods_wait_for_their_schema(service: str) -> None:
    deployment = one("production", "Deployment", service)
    (pod,) = pod_specs(deployment)
    (init,) = pod["initContainers"]
    assert init["args"][:2] == ["migrate", "--check"]
    assert init["args"][init["args"].index("--service") + 1] == service
    env = resolve_env("production", init)
    assert set(env) == {f"{service.upper()}_DATABASE_URL"}


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_environment_uses_only_names_its_settings_class_reads(
    overlay: str, service: str
) -> None:
    container = main_container(one(overlay, "Deployment", service))
    names = env_names_of(overlay, container)
    assert not names - envcheck.env_names(service), sorted(names - envcheck.env_names(service))
    assert envcheck.missing_required(service, names) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_settings_load_from_the_pod_environment(overlay: str, service: str) -> None:
    namespace = namespace_of(overlay)
    container = main_container(one(overlay, "Deployment", service))
    settings = envcheck.load_settings(service, resolve_env(overlay, container))
    assert settings.platform.environment == "production"
    # Every consumer queue is a quorum queue in the cluster.
    assert settings.platform.queue_type == "quorum"
    database = make_url(settings.database_url.get_secret_value())
    assert database.host == f"pathways-db-rw.{namespace}.svc"
    assert database.username == f"pathways_{service}"
    amqp = make_url(settings.platform.amqp_url.get_secret_value())
    rabbit = one(overlay, "RabbitmqCluster", "pathways-mq")
    vhost = one(overlay, "Vhost", "pathways")
    assert amqp.host == f"{rabbit['metadata']['name']}.{namespace}.svc"
    assert amqp.database == vhost["spec"]["name"]
    if service == "gateway":
        for other in SERVICES:
            if other != "gateway":
                assert_reaches(overlay, getattr(settings, f"{other}_url"), other)


def assert_reaches(overlay: str, url: str, service: str) -> None:
    """``url`` resolves to a Service whose target port is where ``service`` listens."""
    parsed = make_url(url.replace("http://", "postgresql://", 1))
    target = one(overlay, "Service", parsed.host)
    port = parsed.port or 80
    (service_port,) = [p for p in target["spec"]["ports"] if p["port"] == port]
    deployment = one(overlay, "Deployment", service)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert netpol.selects({"matchLabels": target["spec"]["selector"]}, labels)
    container = main_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[service_port["targetPort"]] == int(
        resolve_env(overlay, container)[f"{service.upper()}_PORT"]
    )


def test_quorum_queues_are_configured_for_every_service() -> None:
    for overlay in OVERLAYS:
        config = one(overlay, "ConfigMap", "pathways-platform")
        assert config["data"]["PATHWAYS_QUEUE_TYPE"] == "quorum"
        for service in SERVICES:
            container = main_container(one(overlay, "Deployment", service))
            assert resolve_env(overlay, container)["PATHWAYS_QUEUE_TYPE"] == "quorum"


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_inlined(overlay: str) -> None:
    assert objects(overlay, "Secret") == []
    made = {(name, key) for name, data in fake_secrets(overlay).items() for key in data}
    for workload in workloads(overlay):
        for container in containers(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert (ref["name"], ref["key"]) in made | OPERATOR_SECRETS, ref
    service_secrets = set().union(*(envcheck.secret_env_names(s) for s in SERVICES))
    for workload in workloads(overlay):
        for container in containers(workload):
            for item in container.get("env", []):
                if item["name"] in service_secrets | {"PATHWAYS_ADMIN_PASSWORD"}:
                    assert "value" not in item, f"{item['name']} must come from a Secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_resources_refer_to_secrets_that_will_exist(overlay: str) -> None:
    made = fake_secrets(overlay)
    user = one(overlay, "User", "pathways")
    imported = made[user["spec"]["importCredentialsSecret"]["name"]]
    assert {"username", "password"} <= set(imported)
    # The services' URL carries the very credentials the operator gives the user.
    url = make_url(imported["url"].replace("amqp://", "postgresql://", 1))
    assert (url.username, url.password) == (imported["username"], imported["password"])
    cluster = one(overlay, "Cluster", "pathways-db")
    if "backup" in cluster["spec"]:
        credentials = cluster["spec"]["backup"]["barmanObjectStore"]["s3Credentials"]
        for ref in (credentials["accessKeyId"], credentials["secretAccessKey"]):
            assert ref["key"] in made[ref["name"]]
    for ingress in objects(overlay, "Ingress"):
        for tls in ingress["spec"]["tls"]:
            assert tls["secretName"] in TLS_SECRETS


# --- network policies ------------------------------------------------------------------------


def pod_labels(overlay: str, name: str) -> dict[str, str]:
    workload = next(w for w in workloads(overlay) if w["metadata"]["name"] == name)
    return workload["spec"]["template"]["metadata"]["labels"]


def postgres_labels(overlay: str) -> dict[str, str]:
    """What a PostgreSQL instance pod carries: CloudNativePG labels each with its
    cluster's name and copies the Cluster's inheritedMetadata labels onto it."""
    cluster = one(overlay, "Cluster", "pathways-db")
    return {
        "cnpg.io/cluster": cluster["metadata"]["name"],
        **cluster["spec"]["inheritedMetadata"]["labels"],
    }


def restored_postgres_labels() -> dict[str, str]:
    (restore,) = yaml.safe_load_all((K8S / "examples" / "pitr-restore.yaml").read_text())
    return {
        "cnpg.io/cluster": restore["metadata"]["name"],
        **restore["spec"]["inheritedMetadata"]["labels"],
    }


def rabbitmq_labels(overlay: str) -> dict[str, str]:
    # The RabbitMQ Cluster Operator labels every node pod with its cluster's name.
    return {
        "app.kubernetes.io/name": one(overlay, "RabbitmqCluster", "pathways-mq")["metadata"]["name"]
    }


def classify(rule: netpol.Rule, overlay: str) -> set[str]:
    """Which known destinations an egress rule opens: postgres, rabbitmq, dns, services,
    internet, or "anything" when it opens more than a known destination."""
    kinds: set[str] = set()
    if rule.any_peer:
        return {"anything"}
    dns = {"kubernetes.io/metadata.name": "kube-system"}
    app_pods = {s: pod_labels(overlay, s) for s in SERVICES if s != "gateway"}
    for peer in rule.peers:
        same = "namespaceSelector" not in peer
        if "ipBlock" in peer:
            kinds.add("internet" if public_only(peer["ipBlock"]) else "anything")
        elif (
            same
            and netpol.selects(peer.get("podSelector"), postgres_labels(overlay))
            and netpol.selects(peer.get("podSelector"), restored_postgres_labels())
            and not netpol.selects(peer.get("podSelector"), pod_labels(overlay, "gateway"))
        ):
            kinds.add("postgres")
        elif peer.get("podSelector", {}).get("matchLabels") == rabbitmq_labels(overlay) and same:
            kinds.add("rabbitmq")
        elif netpol.peer_matches_pod(
            peer, {"k8s-app": "kube-dns"}, namespace_labels=dns, same_namespace=False
        ) and peer.get("podSelector"):
            kinds.add("dns")
        elif (
            same
            and all(netpol.selects(peer.get("podSelector"), labels) for labels in app_pods.values())
            and not netpol.selects(peer.get("podSelector"), pod_labels(overlay, "gateway"))
        ):
            kinds.add("services")
        else:
            kinds.add("anything")
    ports = set(rule.ports)
    expected_ports = {
        "postgres": {("TCP", 5432)},
        "rabbitmq": {("TCP", 5672)},
        "dns": {("UDP", 53), ("TCP", 53)},
        "services": {("TCP", 8000)},
        "internet": {("TCP", 443)},
    }
    for kind in kinds - {"anything"}:
        if not ports or not ports <= expected_ports[kind]:
            kinds.add("anything")
    return kinds


def public_only(block: dict[str, Any]) -> bool:
    excluded = [ipaddress.ip_network(c) for c in block.get("except", [])]
    return block["cidr"] == "0.0.0.0/0" and all(
        any(ipaddress.ip_network(private).subnet_of(e) for e in excluded)
        for private in PRIVATE_RANGES
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pathways_pod_starts_from_deny_all(overlay: str) -> None:
    policies = objects(overlay, "NetworkPolicy")
    for workload in workloads(overlay):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        for direction in ("Ingress", "Egress"):
            assert netpol.isolating(policies, labels, direction), (
                workload["metadata"]["name"],
                direction,
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside(overlay: str) -> None:
    policies = objects(overlay, "NetworkPolicy")
    gateway_rules = netpol.rules(policies, pod_labels(overlay, "gateway"), "Ingress")
    assert any(r.any_peer and r.ports == (("TCP", 8000),) for r in gateway_rules)
    monitoring = {"kubernetes.io/metadata.name": "monitoring"}
    for name in [s for s in SERVICES if s != "gateway"] + ["migrate"]:
        for rule in netpol.rules(policies, pod_labels(overlay, name), "Ingress"):
            assert not rule.any_peer, (name, rule)
            for peer in rule.peers:
                from_gateway = "namespaceSelector" not in peer and netpol.selects(
                    peer.get("podSelector"), pod_labels(overlay, "gateway")
                )
                from_monitoring = peer.get("namespaceSelector", {}).get("matchLabels") == monitoring
                assert from_gateway or from_monitoring, (name, rule)
                assert "ipBlock" not in peer
        if name == "migrate":
            assert netpol.rules(policies, pod_labels(overlay, name), "Ingress") == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_only_postgres_rabbitmq_and_dns(overlay: str) -> None:
    policies = objects(overlay, "NetworkPolicy")
    for service in [s for s in SERVICES if s != "gateway"]:
        reached = set().union(
            *(
                classify(r, overlay)
                for r in netpol.rules(policies, pod_labels(overlay, service), "Egress")
            )
        )
        assert reached == {"postgres", "rabbitmq", "dns"}, (service, reached)
    gateway = set().union(
        *(
            classify(r, overlay)
            for r in netpol.rules(policies, pod_labels(overlay, "gateway"), "Egress")
        )
    )
    # ...and the gateway, besides, the services it routes to and partners' webhooks.
    assert gateway == {"postgres", "rabbitmq", "dns", "services", "internet"}
    migrate = set().union(
        *(
            classify(r, overlay)
            for r in netpol.rules(policies, pod_labels(overlay, "migrate"), "Egress")
        )
    )
    assert migrate == {"postgres", "dns"}


def test_the_egress_check_would_notice_an_open_door() -> None:
    rule = netpol.Rule("x", ({"ipBlock": {"cidr": "0.0.0.0/0"}},), (("TCP", 443),))
    assert "anything" in classify(rule, "production")
    rule = netpol.Rule(
        "x", ({"podSelector": {"matchLabels": {"pathways.io/database": "true"}}},), ()
    )
    assert "anything" in classify(rule, "production")  # every port
    rule = netpol.Rule("x", (), (("TCP", 5432),))
    assert classify(rule, "production") == {"anything"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_and_rabbitmq_accept_clients_only_from_pathways(overlay: str) -> None:
    policies = objects(overlay, "NetworkPolicy")
    guarded = (
        (postgres_labels(overlay), 5432),
        (restored_postgres_labels(), 5432),  # a point-in-time restore is guarded as well
        (rabbitmq_labels(overlay), 5672),
    )
    for labels, client_port in guarded:
        rules = netpol.rules(policies, labels, "Ingress")
        assert rules and not any(r.any_peer for r in rules)
        client_rules = [r for r in rules if ("TCP", client_port) in r.ports]
        for rule in client_rules:
            for peer in rule.peers:
                assert "namespaceSelector" not in peer and "ipBlock" not in peer
                assert netpol.selects(peer["podSelector"], pod_labels(overlay, "referrals"))
                assert not netpol.selects(peer["podSelector"], {"app": "something-else"})


# --- the public entrance and backups -------------------------------------------------------


def test_production_exposes_only_the_gateway_over_tls() -> None:
    (ingress,) = objects("production", "Ingress")
    assert ingress["spec"]["tls"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}
    for service in objects("production", "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_the_ingress_lets_through_the_largest_sync_the_gateway_accepts() -> None:
    (ingress,) = objects("production", "Ingress")
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    match = re.fullmatch(r"([0-9]+)([kmg]?)", size)
    assert match, size
    number, unit = match.groups()
    allowed = int(number) * 1024 ** " kmg".index(unit or " ")
    assert allowed >= GatewaySettings().max_bulk_body_bytes


def test_production_backs_up_continuously_and_the_example_restores_from_it() -> None:
    cluster = one("production", "Cluster", "pathways-db")
    backup = cluster["spec"]["backup"]
    assert re.fullmatch(r"[1-9][0-9]*[dwm]", backup["retentionPolicy"])
    (scheduled,) = objects("production", "ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    (restore,) = yaml.safe_load_all((K8S / "examples" / "pitr-restore.yaml").read_text())
    source = restore["spec"]["bootstrap"]["recovery"]["source"]
    (external,) = [c for c in restore["spec"]["externalClusters"] if c["name"] == source]
    assert source == cluster["metadata"]["name"]
    store = backup["barmanObjectStore"]
    assert external["barmanObjectStore"]["destinationPath"] == store["destinationPath"]
    assert external["barmanObjectStore"]["s3Credentials"] == store["s3Credentials"]
    assert restore["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["targetTime"]
    # The restored cluster archives under its own name, never into the source's archive.
    own = restore["spec"]["backup"]["barmanObjectStore"]
    assert own.get("serverName", restore["metadata"]["name"]) != source
