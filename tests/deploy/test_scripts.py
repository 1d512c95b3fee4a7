"""The operators' helper scripts, run for real: deploy/compose/make-env.sh writes .env,
deploy/k8s/create-secrets.sh creates the Kubernetes Secrets (against a stand-in kubectl)."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pathways.bootstrap import SERVICES
from pathways.migrate_job import read_service_databases
from tests.deploy.fake_kubectl import FakeCluster

REPO = Path(__file__).resolve().parents[2]
MAKE_ENV = REPO / "deploy" / "compose" / "make-env.sh"
HEX48 = re.compile(r"[0-9a-f]{48}")


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.partition("=")
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {key: value for key, _, value in pairs}


def test_make_env_writes_a_private_file_of_fresh_distinct_secrets(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    for target in (first, second):
        subprocess.run(["sh", str(MAKE_ENV), str(target)], check=True, capture_output=True)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    env = read_env(first)
    secrets = {
        k: v for k, v in env.items() if k.endswith("_PASSWORD") or k == "PATHWAYS_INTERNAL_SECRET"
    }
    assert len(secrets) == 2 + len(SERVICES) + 1  # postgres, rabbitmq, services, internal
    assert all(HEX48.fullmatch(v) for v in secrets.values())
    assert re.fullmatch(r"adm_[0-9a-f]{48}", env["PATHWAYS_ADMIN_TOKEN"])
    values = [*secrets.values(), env["PATHWAYS_ADMIN_TOKEN"]]
    assert len(set(values)) == len(values)
    # Another run, another set: nothing is a fixed default.
    assert not set(values) & set(read_env(second).values())


def test_make_env_never_overwrites_live_secrets(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("POSTGRES_PASSWORD=keep-me\n")
    result = subprocess.run(["sh", str(MAKE_ENV), str(target)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "not overwriting" in result.stderr
    assert target.read_text() == "POSTGRES_PASSWORD=keep-me\n"


@pytest.fixture
def cluster(tmp_path: Path) -> FakeCluster:
    return FakeCluster(tmp_path)


def test_create_secrets_makes_every_secret_the_manifests_name(cluster: FakeCluster) -> None:
    result = cluster.create_secrets("pathways")
    assert result.returncode == 0, result.stderr
    secrets = cluster.secrets("pathways")
    assert set(secrets) == {"pathways-secrets", "pathways-amqp"} | {
        f"pathways-db-{s}" for s in SERVICES
    }
    assert HEX48.fullmatch(secrets["pathways-secrets"]["internal-secret"])
    assert secrets["pathways-secrets"]["admin-token"].startswith("adm_")
    amqp = secrets["pathways-amqp"]
    assert amqp["url"] == (
        f"amqp://{amqp['username']}:{amqp['password']}@pathways-mq.pathways.svc:5672/pathways"
    )
    # The migrate Job accepts the URLs, and each service has a role and password of its own.
    env = {f"{s.upper()}_DATABASE_URL": secrets[f"pathways-db-{s}"]["url"] for s in SERVICES}
    databases = read_service_databases(SERVICES, env, admin_user="postgres")
    assert len({d.url.password for d in databases}) == len(SERVICES)
    for item in databases:
        assert item.url.host == "pathways-db-rw.pathways.svc"
        assert item.role == f"pathways_{item.service}"
    assert "pathways-backup-s3 not created" in result.stdout


def test_create_secrets_keeps_existing_secrets(cluster: FakeCluster) -> None:
    cluster.create_secrets("pathways")
    before = cluster.secrets("pathways")
    again = cluster.create_secrets("pathways")
    assert again.returncode == 0
    assert "secret/pathways-amqp exists; kept" in again.stdout
    assert cluster.secrets("pathways") == before


def test_create_secrets_never_puts_a_value_on_a_command_line(cluster: FakeCluster) -> None:
    cluster.create_secrets("ns1", BACKUP_ACCESS_KEY_ID="AKIA1", BACKUP_ACCESS_SECRET_KEY="s3cr3t")
    secrets = cluster.secrets("ns1")
    assert secrets["pathways-backup-s3"] == {
        "ACCESS_KEY_ID": "AKIA1",
        "ACCESS_SECRET_KEY": "s3cr3t",
    }
    calls = "\n".join(cluster.calls)
    for data in secrets.values():
        for key, value in data.items():
            if key != "username":  # a name, not a secret
                assert value not in calls, key
    url = make_url(secrets["pathways-db-referrals"]["url"])
    assert url.host == "pathways-db-rw.ns1.svc"


def test_create_secrets_needs_a_namespace(cluster: FakeCluster) -> None:
    result = subprocess.run(
        ["sh", str(REPO / "deploy" / "k8s" / "create-secrets.sh")], capture_output=True, text=True
    )
    assert result.returncode != 0 and "usage" in result.stderr
