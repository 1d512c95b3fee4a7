"""The image: Dockerfile, .dockerignore and the entrypoint that picks the process.

No Docker engine runs here, so the Dockerfile is read, not built; the entrypoint script
is run for real (with a stand-in ``python`` that records what it was asked to run, and
in test_replicas.py with the real one, serving real services).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pathways.bootstrap import SERVICES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
SECRETISH = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN)", re.I)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in parsed:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def global_args(parsed: list[tuple[str, str]]) -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, rest in parsed:
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


# --- Dockerfile ---------------------------------------------------------------------------


def test_the_build_is_multi_stage_with_a_separate_runtime(dockerfile) -> None:
    parts = stages(dockerfile)
    assert len(parts) >= 2
    names = [rest.split()[-1] for keyword, rest in dockerfile if keyword == "FROM"]
    assert names[0] == "build" and names[-1] == "runtime"
    runtime = parts[-1]
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    # The runtime takes the built virtualenv and source from the build stage.
    assert any(c.startswith("--from=build /opt/venv") for c in copies)
    assert not any(keyword == "RUN" and "pip install" in rest for keyword, rest in runtime)


def test_the_base_image_is_pinned_and_slim(dockerfile) -> None:
    args = global_args(dockerfile)
    for keyword, rest in dockerfile:
        if keyword != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        # An exact patch release and Debian release (or a digest): never a moving tag.
        assert re.fullmatch(
            r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image
        ), image


def test_the_python_of_the_image_is_the_one_the_project_declares(dockerfile) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.12"' in pyproject
    assert global_args(dockerfile)["PYTHON_IMAGE"].startswith("python:3.11.")


def test_the_runtime_runs_as_an_unprivileged_numeric_user(dockerfile) -> None:
    runtime = stages(dockerfile)[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) >= 1000, users[-1]
    assert group.isdigit() and int(group) >= 1000
    # Nothing after USER switches back to root.
    index = max(i for i, (keyword, _) in enumerate(runtime) if keyword == "USER")
    assert all(keyword != "USER" for keyword, _ in runtime[index + 1 :])


def test_dependencies_are_exactly_the_locked_hashed_wheels(dockerfile) -> None:
    installs = [rest for keyword, rest in dockerfile if keyword == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    assert "--require-hashes" in installs[0] and "-r /tmp/requirements.lock" in installs[0]
    assert "--no-deps" in installs[0]
    copied = [rest for keyword, rest in dockerfile if keyword == "COPY"]
    assert "requirements.lock /tmp/requirements.lock" in copied


def test_no_secret_is_set_or_copied_into_the_image(dockerfile) -> None:
    for keyword, rest in dockerfile:
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not SECRETISH.search(rest), f"{keyword} {rest}"
        if keyword in {"COPY", "ADD"} and "--from=" not in rest:
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            for source in sources:
                assert ".env" not in source and ".pathways" not in source, source
                assert (REPO / source).exists(), f"COPY source {source} does not exist"
        assert keyword != "ADD", "use COPY: ADD fetches URLs and unpacks archives"


def test_the_entrypoint_is_the_script_in_the_repository(dockerfile) -> None:
    runtime = stages(dockerfile)[-1]
    assert ("ENTRYPOINT", '["pathways-entrypoint"]') in runtime
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert any(
        "deploy/docker/entrypoint.sh /usr/local/bin/pathways-entrypoint" in c for c in copies
    )
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR


# --- .dockerignore ------------------------------------------------------------------------


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent of it) decides."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip().rstrip("/")
        if _pattern_matches(body, candidates):
            excluded = not negate
    return excluded


def _pattern_matches(pattern: str, candidates: list[str]) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(
            fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], tail) or fnmatch.fnmatchcase(c, tail)
            for c in candidates
        )
    return any(
        fnmatch.fnmatchcase(c, pattern) and c.count("/") == pattern.count("/") for c in candidates
    )


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".pathways/local.env",
        ".env",
        "deploy/compose/.env",
        "services/referrals/.env",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "tests/artifacts/platform-logs/gateway.log",
        "bench/RESULTS.md",
        "docker-compose.yml",
        "services/referrals/__pycache__/app.cpython-311.pyc",
        "deploy/k8s/create-secrets.sh",
    ],
)
def test_the_build_context_leaves_out(path: str, ignore_patterns: list[str]) -> None:
    assert dockerignore_excludes(path, ignore_patterns)


@pytest.mark.parametrize(
    "path",
    [
        "requirements.lock",
        "shared/settings.py",
        "services/referrals/app.py",
        "services/referrals/migrations/versions/0001_messaging.py",
        "services/referrals/migrations/script.py.mako",
        "pathways/cli.py",
        "pathways/migrate_job.py",
        "deploy/docker/entrypoint.sh",
    ],
)
def test_the_build_context_includes(path: str, ignore_patterns: list[str]) -> None:
    assert not dockerignore_excludes(path, ignore_patterns)


def test_everything_the_dockerfile_copies_is_in_the_build_context(
    dockerfile, ignore_patterns: list[str]
) -> None:
    for keyword, rest in dockerfile:
        if keyword != "COPY" or "--from=" in rest:
            continue
        for source in [s for s in rest.split()[:-1] if not s.startswith("--")]:
            source = source.rstrip("/")
            files = [p for p in (REPO / source).rglob("*") if p.is_file()] or [REPO / source]
            sample = [str(p.relative_to(REPO)) for p in files if "__pycache__" not in str(p)]
            assert sample and not any(dockerignore_excludes(p, ignore_patterns) for p in sample)


# --- the entrypoint ------------------------------------------------------------------------


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """A `python` that prints the arguments it was started with, one per line."""
    script = tmp_path / "python"
    script.write_text('#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done\n')
    script.chmod(0o755)
    return tmp_path


def run_entrypoint(fake_python: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={"PATH": f"{fake_python}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_entrypoint_serves_a_service_where_its_settings_say(
    fake_python: Path, service: str
) -> None:
    prefix = service.upper()
    result = run_entrypoint(
        fake_python, service, **{f"{prefix}_HOST": "10.1.2.3", f"{prefix}_PORT": "8123"}
    )
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert argv[:4] == ["-m", "uvicorn", f"services.{service}.app:create_app", "--factory"]
    assert argv[argv.index("--host") + 1] == "10.1.2.3"
    assert argv[argv.index("--port") + 1] == "8123"
    assert "--timeout-graceful-shutdown" in argv


def test_the_entrypoint_binds_all_interfaces_by_default(fake_python: Path) -> None:
    argv = run_entrypoint(fake_python, "referrals").stdout.splitlines()
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "8000"


def test_the_entrypoint_runs_the_migration_job(fake_python: Path) -> None:
    result = run_entrypoint(fake_python, "migrate", "--check", "--service", "outcomes")
    assert result.stdout.splitlines() == [
        "-m",
        "pathways.cli",
        "migrate",
        "--check",
        "--service",
        "outcomes",
    ]


def test_the_entrypoint_without_a_process_explains_itself(fake_python: Path) -> None:
    result = run_entrypoint(fake_python)
    assert result.returncode == 64
    assert "usage:" in result.stderr and "migrate" in result.stderr


def test_the_entrypoint_runs_any_other_command(fake_python: Path) -> None:
    result = run_entrypoint(fake_python, "python", "-c", "pass")
    assert result.stdout.splitlines() == ["-c", "pass"]


def test_the_entrypoint_knows_exactly_the_platform_services() -> None:
    text = ENTRYPOINT.read_text()
    case = re.search(r"^\s*(gateway[^)]*)\)", text, re.M)
    assert case is not None
    assert [s.strip() for s in case.group(1).split("|")] == list(SERVICES)


def test_the_migrate_command_exists_in_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pathways.cli", "migrate", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "--check" in result.stdout
