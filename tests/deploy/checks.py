"""Checks of the deployment files against the code: each returns the problems it found (empty when
the files agree with the code), so a test can also prove that each one catches a broken file."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import entry_points, version
from typing import Any

import click
from packaging.specifiers import SpecifierSet

from billplane.app import create_app
from billplane.cli.main import cli
from billplane.events.options import ALLOW_HTTP_LOOPBACK_VARIABLE
from billplane.plugins.host import OPTION_PREFIX
from billplane.settings import (
    _REQUIRED,
    _REQUIRED_TO_SERVE,
    ENVIRONMENT,
    DatabaseSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    SettingsError,
    load_settings,
)
from tests.deploy.files import REPO, Dockerfile, Stage, compose_environment, pod_specs, stage_env

IMAGE = f"billplane:{version('billplane')}"
SERVER_ROLES = {"api"}  # roles that answer requests and so need the admin key
MIGRATE = ["migrate"]
# The uid the image runs as; the Kubernetes pods must claim the same one.
_USER = re.compile(r"^(\d+)(?::(\d+))?$")


# --- the command line -------------------------------------------------------------------------


def resolve_command(args: list[str]) -> tuple[click.Command, click.Context]:
    """The click command ``billplane ARGS`` would run, with its parsed parameters; raises
    click.ClickException (UsageError, NoSuchOption...) as the real command line would."""
    command: click.Command = cli
    name = "billplane"
    remaining = list(args)
    parent = cli.make_context("billplane", [], resilient_parsing=True)
    while isinstance(command, click.Group):
        if not remaining:
            raise click.UsageError(f"{name} needs a subcommand")
        sub = command.get_command(parent, remaining[0])
        if sub is None:
            raise click.UsageError(f"no command {remaining[0]!r} in {name}")
        name, command, remaining = remaining[0], sub, remaining[1:]
        if isinstance(command, click.Group):
            parent = command.make_context(name, [], parent=parent, resilient_parsing=True)
    return command, command.make_context(name, remaining, parent=parent)


def command_problems(args: list[str], where: str) -> list[str]:
    try:
        resolve_command(args)
    except click.ClickException as exc:
        return [f"{where}: `billplane {' '.join(args)}`: {exc.format_message()}"]
    return []


def role_command_problems(role: str, args: list[str], where: str) -> list[str]:
    """The command exists and fits the role: the API without an embedded worker, the migration
    step the real `migrate` (control track, then every tenant)."""
    problems = command_problems(args, where)
    if problems:
        return problems
    command, context = resolve_command(args)
    if role == "api" and (command.name != "run" or context.params.get("sync_worker") is not False):
        problems.append(f"{where}: the API must be `run --no-worker` (workers are their own service), not {args}")
    if role == "worker" and (command.name != "worker" or context.params.get("once")):
        problems.append(f"{where}: the worker must be a long-running `worker`, not {args}")
    if role == "migrate" and args != MIGRATE:
        problems.append(f"{where}: the migration step must run `billplane migrate`, not {args}")
    return problems


# --- the environment --------------------------------------------------------------------------


@cache
def installed_providers() -> frozenset[str]:
    return frozenset(entry.name for entry in entry_points(group="billplane.providers"))


def variable_problems(names: Iterable[str], where: str) -> list[str]:
    """Every BILLPLANE_* name is one the code reads (settings, provider options, the webhook
    loopback switch); development-only names (BILLPLANE_HOME, BILLPLANE_FAULT) are refused."""
    problems = []
    for name in names:
        if not name.startswith("BILLPLANE_") or name in ENVIRONMENT or name == ALLOW_HTTP_LOOPBACK_VARIABLE:
            continue
        if name.startswith(OPTION_PREFIX):
            provider = name.removeprefix(OPTION_PREFIX).split("_", 1)[0].lower()
            if provider in installed_providers():
                continue
            problems.append(f"{where}: {name} names no installed provider ({sorted(installed_providers())})")
            continue
        problems.append(f"{where}: {name} is not a variable billplane reads")
    return problems


def settings_problems(role: str, env: Mapping[str, str], where: str) -> list[str]:
    """The role's environment has the required variables and the settings accept every value."""
    serving = role in SERVER_ROLES
    required = _REQUIRED + (_REQUIRED_TO_SERVE if serving else ())
    problems = [f"{where}: {name} is required and missing" for name in required if not env.get(name)]
    try:
        load_settings(dict(env), serving=serving)
    except SettingsError as exc:
        problems.append(f"{where}: the settings refuse this environment: {exc}")
    return problems


def port_of(env: Mapping[str, str]) -> int:
    return int(env.get("BILLPLANE_PORT") or ServerSettings().port)


# --- the application --------------------------------------------------------------------------


@cache
def get_routes() -> frozenset[str]:
    """Paths the real app answers with GET (its route table, not a list kept by hand)."""
    settings = Settings(
        database=DatabaseSettings(url="postgresql+asyncpg://nobody@127.0.0.1:1/none"),
        security=SecuritySettings(secret_key="s" * 40, admin_key="a" * 40),
    )
    app = create_app(settings)
    try:
        return frozenset(route.path for route in app.routes if "GET" in getattr(route, "methods", ()))
    finally:
        asyncio.run(app.state.runtime.close())


def probe_problems(path: str, where: str) -> list[str]:
    return [] if path in get_routes() else [f"{where}: GET {path} is not a route of the app"]


# --- the files --------------------------------------------------------------------------------


def image_problems(image: object, where: str) -> list[str]:
    return [] if image == IMAGE else [f"{where}: image {image!r} is not {IMAGE} (the project's version)"]


def dockerfile_problems(dockerfile: Dockerfile) -> list[str]:
    problems: list[str] = []
    runtime = dockerfile.stages[-1]
    base = dockerfile.global_args.get("PYTHON_IMAGE", runtime.base)
    match = re.match(r"python:(\d+\.\d+)", base)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    if match is None or match.group(1) + ".0" not in SpecifierSet(requires):
        problems.append(f"Dockerfile: base image {base!r} is not a Python that satisfies {requires}")
    problems += _install_problems(dockerfile)
    user = runtime.last("USER")
    if user is None or not (found := _USER.match(user.arguments)) or int(found.group(1)) == 0:
        problems.append("Dockerfile: the runtime stage must end as a numeric non-root USER")
    entrypoint = runtime.last("ENTRYPOINT")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    if entrypoint is None or entrypoint.exec_form() != ["billplane"] or "billplane" not in scripts:
        problems.append("Dockerfile: ENTRYPOINT must be the `billplane` console script, in exec form")
    cmd = runtime.last("CMD")
    problems += role_command_problems("api", (cmd.exec_form() or []) if cmd else [], "Dockerfile CMD")
    env = stage_env(runtime)
    problems += variable_problems(env, "Dockerfile ENV")
    exposed = [int(port.split("/")[0]) for item in runtime.all("EXPOSE") for port in item.arguments.split()]
    if exposed != [port_of(env)]:
        problems.append(f"Dockerfile: EXPOSE {exposed} is not the port the server binds ({port_of(env)})")
    healthcheck = runtime.last("HEALTHCHECK")
    command = " ".join(healthcheck.exec_form() or []) if healthcheck else ""
    paths = re.findall(r"'(/[^']*)'", command)
    if not paths:
        problems.append("Dockerfile: no HEALTHCHECK with an exec-form CMD naming a path")
    for path in paths:
        problems += probe_problems(path, "Dockerfile HEALTHCHECK")
    return problems


def _install_problems(dockerfile: Dockerfile) -> list[str]:
    builder = install_stage(dockerfile)
    runs = [item.arguments for item in builder.all("RUN") if "uv sync" in item.arguments] if builder else []
    if not runs:
        return ["Dockerfile: no build stage runs `uv sync`"]
    return [
        f"Dockerfile line: `{run}` must install the locked, non-dev environment (--locked --no-dev)"
        for run in runs
        if "--locked" not in run or "--no-dev" not in run
    ]


def install_stage(dockerfile: Dockerfile) -> Stage | None:
    return next((stage for stage in dockerfile.stages if any("uv sync" in i.arguments for i in stage.all("RUN"))), None)


def compose_problems(compose: dict[str, Any], values: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    services = compose.get("services", {})
    for role in ("migrate", "api", "worker"):
        service = services.get(role)
        if service is None:
            problems.append(f"compose: no {role} service")
        else:
            problems += _compose_service_problems(role, service, values)
    migrate = services.get("migrate") or {}
    if migrate.get("restart", "no") != "no":
        problems.append("compose migrate: a one-shot step must not restart")
    if not any("postgres" in str(volume) for volume in (services.get("postgres") or {}).get("volumes", [])):
        problems.append("compose postgres: its data must live on a volume")
    return problems


def _compose_service_problems(role: str, service: dict[str, Any], values: Mapping[str, str]) -> list[str]:
    where = f"compose {role}"
    problems = image_problems(service.get("image"), where)
    problems += role_command_problems(role, list(service.get("command") or []), where)
    try:
        env = compose_environment(service, dict(values))
    except KeyError as exc:
        return [*problems, f"{where}: {exc}"]
    problems += variable_problems(env, where)
    problems += settings_problems(role, env, where)
    if role != "api" and not (service.get("healthcheck") or {}).get("disable"):
        problems.append(f"{where}: serves no HTTP, so the image's /health check must be disabled")
    if role == "api":
        targets = [int(str(port).rsplit(":", 1)[-1]) for port in service.get("ports", [])]
        if port_of(env) not in targets:
            problems.append(f"{where}: publishes {targets}, but the server binds {port_of(env)}")
    if role != "migrate":
        wait = (service.get("depends_on") or {}).get("migrate", {}).get("condition")
        if wait != "service_completed_successfully":
            problems.append(f"{where}: must start only after migrate completed successfully")
    return problems


def k8s_problems(manifests: dict[str, list[dict[str, Any]]], dockerfile: Dockerfile) -> list[str]:
    problems: list[str] = []
    docs = [doc for documents in manifests.values() for doc in documents]
    config = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    user = dockerfile.stages[-1].last("USER")
    uid = int(user.arguments.split(":")[0]) if user and user.arguments.split(":")[0].isdigit() else None
    for name, spec in pod_specs(manifests).items():
        role = "migrate" if name.startswith("Job/") else name.removeprefix("Deployment/billplane-")
        context = spec.get("securityContext", {})
        if not context.get("runAsNonRoot") or context.get("runAsUser") != uid:
            problems.append(f"k8s {name}: must run as non-root user {uid} (the image's USER)")
        for container in spec["containers"]:
            where = f"k8s {name}"
            problems += image_problems(container.get("image"), where)
            problems += role_command_problems(role, list(container.get("args") or []), where)
            if container.get("command"):
                problems.append(f"{where}: must keep the image's `billplane` entrypoint (set args, not command)")
            env, env_problems = _container_env(container, config, secrets, where)
            problems += env_problems + variable_problems(env, where) + settings_problems(role, env, where)
            resources = container.get("resources", {})
            if not resources.get("requests") or not resources.get("limits"):
                problems.append(f"{where}: needs resource requests and limits")
            problems += _probe_and_port_problems(role, container, env, where)
    problems += _service_problems(docs, deployments)
    problems += _target_problems(docs, deployments)
    if not any(d["kind"] == "HorizontalPodAutoscaler" for d in docs):
        problems.append("k8s: no HorizontalPodAutoscaler")
    return problems


def _target_problems(docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]) -> list[str]:
    """Every autoscaler and disruption budget points at one of the Deployments."""
    problems = []
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        for doc in docs:
            if doc["kind"] != kind:
                continue
            target = doc["spec"].get("scaleTargetRef", {}).get("name")
            selector = doc["spec"].get("selector", {}).get("matchLabels")
            known = (
                target in deployments
                if target
                else any(d["spec"]["selector"]["matchLabels"] == selector for d in deployments.values())
            )
            if not known:
                problems.append(f"k8s {kind}/{doc['metadata']['name']}: targets no Deployment")
    return problems


def _container_env(
    container: dict[str, Any], config: dict[str, dict[str, str]], secrets: dict[str, dict[str, str]], where: str
) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    problems: list[str] = []
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        if name not in config:
            problems.append(f"{where}: envFrom names ConfigMap {name!r}, which is not in deploy/k8s")
            continue
        env.update({key: str(value) for key, value in config[name].items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom", {}).get("secretKeyRef", {})
        data = secrets.get(ref.get("name"))
        if data is None or ref.get("key") not in data:
            problems.append(f"{where}: {item['name']} reads {ref} which the example Secret does not hold")
            continue
        if ref.get("key") != item["name"]:
            problems.append(f"{where}: {item['name']} reads the Secret key {ref.get('key')!r}: keep the names equal")
        env[item["name"]] = str(data[ref["key"]])
    return env, problems


def _probe_and_port_problems(role: str, container: dict[str, Any], env: dict[str, str], where: str) -> list[str]:
    problems = []
    ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
    if role == "api":
        if list(ports.values()) != [port_of(env)]:
            problems.append(f"{where}: containerPort {list(ports.values())} is not BILLPLANE_PORT {port_of(env)}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"{where}: has no {probe}")
                continue
            action = container[probe].get("httpGet") or container[probe].get("tcpSocket") or {}
            port = action.get("port")
            if ports.get(port, port) != port_of(env):
                problems.append(f"{where}: {probe} asks port {port}, not the server's {port_of(env)}")
            if "httpGet" in container[probe]:
                problems += probe_problems(action.get("path", ""), f"{where} {probe}")
        if container.get("readinessProbe", {}).get("httpGet") is None:
            problems.append(f"{where}: readiness must ask GET /health (its database check)")
    elif ports or any(probe in container for probe in ("readinessProbe", "livenessProbe", "startupProbe")):
        problems.append(f"{where}: a {role} serves no HTTP; ports and HTTP probes would check nothing")
    return problems


def _service_problems(docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    services = [doc for doc in docs if doc["kind"] == "Service"]
    if not services:
        problems.append("k8s: no Service")
    for service in services:
        selected = [
            d
            for d in deployments.values()
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        names = {
            port.get("name")
            for d in selected
            for c in d["spec"]["template"]["spec"]["containers"]
            for port in c.get("ports", [])
        }
        numbers = {
            port["containerPort"]
            for d in selected
            for c in d["spec"]["template"]["spec"]["containers"]
            for port in c.get("ports", [])
        }
        if not selected:
            problems.append(f"k8s Service/{service['metadata']['name']}: selects no Deployment")
        problems += [
            f"k8s Service/{service['metadata']['name']}: targetPort {port['targetPort']} is no container port"
            for port in service["spec"]["ports"]
            if port["targetPort"] not in names | numbers
        ]
    return problems
