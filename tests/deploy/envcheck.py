"""What environment a Pathways process reads, and whether a deployment gives it that.

Names are derived from the settings classes themselves (pydantic-settings fields, env
prefixes, validation aliases: ``pathways.migrate_job.settings_env_names``), never from a
list kept by hand, so a setting another engineer adds tomorrow is known here at once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from pathways.bootstrap import SERVICES
from pathways.migrate_job import MigrateSettings, database_url_env, settings_class
from pathways.migrate_job import settings_env_names as _settings_env_names
from shared.settings import DEVELOPMENT_SECRETS, PlatformSettings, ServiceSettings

# A URL whose host is this machine: right on a laptop, wrong in any container.
LOOPBACK = re.compile(r"[/@](127\.0\.0\.1|localhost)[:/]")


def env_names(service: str) -> set[str]:
    """Every variable the service's settings class (platform settings included) reads."""
    return {
        name for names in _settings_env_names(settings_class(service)).values() for name in names
    }


def migrate_env_names() -> set[str]:
    own = {name for names in _settings_env_names(MigrateSettings).values() for name in names}
    return own | {database_url_env(service) for service in SERVICES}


def secret_env_names(service: str) -> set[str]:
    """Variables holding secrets: SecretStr fields."""
    names: set[str] = set()
    for path, field_names in _settings_env_names(settings_class(service)).items():
        if _is_secret(settings_class(service), path):
            names |= field_names
    return names


def required_env_names(service: str) -> list[frozenset[str]]:
    """What a container must set, as alternatives (an aliased setting has several names):
    whatever defaults to loopback or a development secret, plus the environment (so
    default secrets fail closed), the queue type (quorum) and the address uvicorn binds
    (the image's entrypoint reads the same two variables)."""
    cls = settings_class(service)
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    required = [
        frozenset({"PATHWAYS_ENVIRONMENT"}),
        frozenset({"PATHWAYS_QUEUE_TYPE"}),
        frozenset({f"{prefix}HOST"}),
        frozenset({f"{prefix}PORT"}),
    ]
    for path, names in _settings_env_names(cls).items():
        default = _default(cls, path)
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, str) and (
            LOOPBACK.search(default) or default in DEVELOPMENT_SECRETS
        ):
            required.append(frozenset(names))
    return required


def missing_required(service: str, names: set[str]) -> list[str]:
    """The required settings ``names`` does not provide (each as "A or B")."""
    return [
        " or ".join(sorted(choices))
        for choices in required_env_names(service)
        if not choices & names
    ]


def _field_owner(cls: type[BaseSettings], path: str) -> tuple[type[BaseSettings], str]:
    head, _, rest = path.partition(".")
    if rest:
        nested = cls.model_fields[head].annotation
        assert isinstance(nested, type) and issubclass(nested, BaseSettings)
        return _field_owner(nested, rest)
    return cls, head


def _default(cls: type[BaseSettings], path: str) -> Any:
    owner, field = _field_owner(cls, path)
    info = owner.model_fields[field]
    return info.get_default(call_default_factory=True)


def _is_secret(cls: type[BaseSettings], path: str) -> bool:
    owner, field = _field_owner(cls, path)
    annotation = owner.model_fields[field].annotation
    return annotation is SecretStr or "SecretStr" in str(annotation)


# --- loading settings from a given environment --------------------------------------------


def _all_prefixes() -> set[str]:
    prefixes = {str(PlatformSettings.model_config.get("env_prefix", "")).upper()}
    for service in SERVICES:
        prefixes.add(str(settings_class(service).model_config.get("env_prefix", "")).upper())
    return prefixes


@contextlib.contextmanager
def isolated_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly ``env`` as far as Pathways settings are concerned."""
    saved = dict(os.environ)
    prefixes = _all_prefixes()
    try:
        for key in list(os.environ):
            if any(key.upper().startswith(p) for p in prefixes):
                del os.environ[key]
        os.environ.update(env)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_settings(service: str, env: Mapping[str, str]) -> ServiceSettings:
    """The service's settings as the process would build them from ``env``."""
    with isolated_environ(env):
        return settings_class(service)()


# --- docker compose variable interpolation ------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
    ``${VAR?err}``, ``${VAR:+alt}`` and ``$$`` (a literal ``$``)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        non_empty = present and env[name] != ""
        if op in (":-", "-"):
            return env[name] if (non_empty if op == ":-" else present) else arg
        if op in (":?", "?"):
            if not (non_empty if op == ":?" else present):
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if (non_empty if op == ":+" else present) else ""
        return env.get(name, "")

    return _INTERPOLATION.sub(replace, value)


def variables_in(value: str) -> set[str]:
    return {m["braced"] or m["named"] for m in _INTERPOLATION.finditer(value) if not m["escaped"]}


def required_variables_in(value: str) -> set[str]:
    return {m["braced"] for m in _INTERPOLATION.finditer(value) if m["op"] in (":?", "?")}


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's ``environment`` as a mapping (list or mapping form)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in environment.items()}
