"""docker-compose.yml: it parses, follows the Compose Specification, starts things in the
right order, and hands every service exactly the environment its settings class reads.

There is no Docker engine here, so nothing is started; the checks read the file, resolve
its ``${...}`` variables as compose would (with a .env from deploy/compose/make-env.sh)
and build each service's real settings object from the result.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from pathways.bootstrap import SERVICES
from pathways.migrate_job import MigrateSettings, read_service_databases
from tests.deploy import envcheck

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = REPO / "deploy" / "compose" / "compose-spec.schema.json"
INFRASTRUCTURE = ("postgres", "rabbitmq")


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def dotenv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A .env as an operator would make it (the real script, fresh random secrets)."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    subprocess.run(
        ["sh", str(REPO / "deploy" / "compose" / "make-env.sh"), str(path)],
        check=True,
        capture_output=True,
    )
    pairs = (
        line.partition("=")
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {key: value for key, _, value in pairs}


def resolved_environment(compose: dict[str, Any], service: str, env: dict[str, str]) -> dict:
    raw = envcheck.compose_environment(compose["services"][service])
    return {key: envcheck.interpolate(value, env) for key, value in raw.items()}


# --- the file itself ---------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    errors = list(jsonschema.Draft201909Validator(schema).iter_errors(compose))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_specification_check_rejects_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["healtcheck"] = broken["services"]["postgres"].pop("healthcheck")
    schema = json.loads(SCHEMA_FILE.read_text())
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def test_every_part_of_the_platform_is_a_service(compose: dict[str, Any]) -> None:
    expected = {*INFRASTRUCTURE, "migrate", *SERVICES}
    assert expected <= set(compose["services"])
    # Optional extras stay behind profiles, so `docker compose up` starts exactly the above.
    extras = set(compose["services"]) - expected
    assert all(compose["services"][name].get("profiles") for name in extras), extras


# --- infrastructure and start-up order ----------------------------------------------------


@pytest.mark.parametrize(
    ("service", "data_dir"),
    [("postgres", "/var/lib/postgresql/data"), ("rabbitmq", "/var/lib/rabbitmq")],
)
def test_infrastructure_has_a_health_check_and_a_named_volume(
    compose: dict[str, Any], service: str, data_dir: str
) -> None:
    spec = compose["services"][service]
    test = spec["healthcheck"]["test"]
    assert test[0] == "CMD" and len(test) > 1
    volumes = [v.split(":") for v in spec["volumes"]]
    named = {source: target for source, target, *_ in volumes}
    assert data_dir in named.values()
    volume = next(source for source, target in named.items() if target == data_dir)
    assert volume in compose["volumes"], f"{volume} must be a named volume"
    assert spec["restart"] == "unless-stopped"
    assert "ports" not in spec, f"{service} must not be published on the host"


def test_rabbitmq_node_name_is_stable(compose: dict[str, Any]) -> None:
    # RabbitMQ keys its data directory by node name (rabbit@<hostname>): a random
    # container hostname would orphan the volume's queues on re-creation.
    assert compose["services"]["rabbitmq"]["hostname"] == "rabbitmq"


@pytest.mark.parametrize("service", SERVICES)
def test_services_start_after_healthy_infrastructure_and_a_finished_migration(
    compose: dict[str, Any], service: str
) -> None:
    depends = compose["services"][service]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["rabbitmq"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert compose["services"][service]["healthcheck"]["test"]


def test_migrate_runs_once_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in migrate


@pytest.mark.parametrize("service", SERVICES)
def test_service_health_check_asks_the_port_it_listens_on(
    compose: dict[str, Any], service: str, dotenv: dict[str, str]
) -> None:
    env = resolved_environment(compose, service, dotenv)
    port = env[f"{service.upper()}_PORT"]
    check = " ".join(compose["services"][service]["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/ready" in check


# --- environment: names, required values, secrets -----------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_service_environment_uses_only_names_its_settings_class_reads(
    compose: dict[str, Any], service: str
) -> None:
    names = set(envcheck.compose_environment(compose["services"][service]))
    unknown = names - envcheck.env_names(service)
    assert not unknown, f"{service}: {sorted(unknown)} are read by no settings class"


@pytest.mark.parametrize("service", SERVICES)
def test_service_environment_sets_what_a_container_must(
    compose: dict[str, Any], service: str
) -> None:
    names = set(envcheck.compose_environment(compose["services"][service]))
    assert envcheck.missing_required(service, names) == []


def test_the_name_check_catches_a_misspelt_variable(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["referrals"]["environment"]
    env["REFERRALS_DATABSE_URL"] = env.pop("REFERRALS_DATABASE_URL")
    names = set(envcheck.compose_environment(broken["services"]["referrals"]))
    assert "REFERRALS_DATABSE_URL" in names - envcheck.env_names("referrals")
    assert envcheck.missing_required("referrals", names) == ["REFERRALS_DATABASE_URL"]


@pytest.mark.parametrize("service", SERVICES)
def test_settings_load_from_the_compose_environment(
    compose: dict[str, Any], service: str, dotenv: dict[str, str]
) -> None:
    """The real settings class accepts what compose gives it, in production mode."""
    env = resolved_environment(compose, service, dotenv)
    settings = envcheck.load_settings(service, env)
    assert settings.platform.environment == "production"
    assert settings.platform.queue_type == "quorum"
    assert settings.host == "0.0.0.0"
    url = make_url(settings.database_url.get_secret_value())
    assert (url.host, url.database, url.username) == ("postgres", "pathways", f"pathways_{service}")
    assert url.password == dotenv[f"{service.upper()}_DB_PASSWORD"]
    amqp = settings.platform.amqp_url.get_secret_value()
    assert amqp == f"amqp://pathways:{dotenv['RABBITMQ_PASSWORD']}@rabbitmq:5672/pathways"
    assert (
        settings.platform.internal_secret.get_secret_value() == dotenv["PATHWAYS_INTERNAL_SECRET"]
    )
    if service == "gateway":
        assert settings.admin_token.get_secret_value() == dotenv["PATHWAYS_ADMIN_TOKEN"]
        for other in SERVICES:
            if other != "gateway":
                other_port = resolved_environment(compose, other, dotenv)[f"{other.upper()}_PORT"]
                assert getattr(settings, f"{other}_url") == f"http://{other}:{other_port}"


@pytest.mark.parametrize("service", SERVICES)
def test_secrets_come_from_the_env_file_not_the_compose_file(
    compose: dict[str, Any], service: str
) -> None:
    env = envcheck.compose_environment(compose["services"][service])
    for name in envcheck.secret_env_names(service) & set(env):
        required = envcheck.required_variables_in(env[name])
        assert required, f"{service}: {name} must take its secret from ${{VAR:?...}}"
        # Without .env the value cannot be built at all: compose refuses to start.
        with pytest.raises(envcheck.MissingVariable):
            envcheck.interpolate(env[name], {})


def test_each_service_sees_only_its_own_database_login(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        env = envcheck.compose_environment(compose["services"][service])
        logins = [name for name in env if name.endswith("_DATABASE_URL")]
        assert logins == [f"{service.upper()}_DATABASE_URL"]
        assert not {"PATHWAYS_ADMIN_DSN", "PATHWAYS_ADMIN_PASSWORD"} & set(env)
        assert not any("POSTGRES_PASSWORD" in value for value in env.values())


def test_migrate_gets_what_the_job_reads_and_the_job_accepts_it(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    names = set(envcheck.compose_environment(compose["services"]["migrate"]))
    assert names <= envcheck.migrate_env_names()
    env = resolved_environment(compose, "migrate", dotenv)
    with envcheck.isolated_environ(env):
        settings = MigrateSettings()
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == dotenv["POSTGRES_PASSWORD"]
    databases = read_service_databases(settings.services(), env, admin_user="postgres")
    assert sorted(d.service for d in databases) == sorted(SERVICES)
    # The job creates exactly the logins the services will use.
    for item in databases:
        service_env = resolved_environment(compose, item.service, dotenv)
        assert item.url_string == service_env[item.env_name]


# --- exposure and hardening ----------------------------------------------------------------


def test_only_the_gateway_is_reachable_from_outside(compose: dict[str, Any]) -> None:
    published = {
        name
        for name, spec in compose["services"].items()
        if spec.get("ports") and not spec.get("profiles")
    }
    assert published == {"gateway"}
    assert compose["networks"]["backend"]["internal"] is True
    for name in (*INFRASTRUCTURE, "migrate", *[s for s in SERVICES if s != "gateway"]):
        assert compose["services"][name]["networks"] == ["backend"], name
    # Published on loopback unless the operator says otherwise (TLS goes in front).
    assert compose["services"]["gateway"]["ports"] == [
        "${PATHWAYS_HTTP_BIND:-127.0.0.1}:${PATHWAYS_HTTP_PORT:-8000}:8000"
    ]


@pytest.mark.parametrize("service", (*SERVICES, "migrate"))
def test_pathways_containers_are_hardened_and_built_from_this_repository(
    compose: dict[str, Any], service: str
) -> None:
    spec = compose["services"][service]
    assert spec["build"]["context"] == "." and spec["build"]["dockerfile"] == "Dockerfile"
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
    assert "user" not in spec, "the image's own non-root user must not be overridden"
    expected_command = ["migrate"] if service == "migrate" else [service]
    assert spec["command"] == expected_command


def test_env_example_documents_every_variable_the_compose_file_reads(
    compose: dict[str, Any],
) -> None:
    text = "\n".join(_strings(compose))
    used = envcheck.variables_in(text)
    example = (REPO / "deploy" / "compose" / "env.example").read_text()
    documented = {
        line.split("=", 1)[0] for line in example.splitlines() if "=" in line and line[0] != "#"
    }
    assert used <= documented, sorted(used - documented)
    # Required secrets are blank in the example: never a default password.
    for name in envcheck.required_variables_in(text):
        line = next(line for line in example.splitlines() if line.startswith(f"{name}="))
        assert line == f"{name}=", line


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []
