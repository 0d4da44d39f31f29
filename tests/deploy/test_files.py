"""The deployment files agree with the code, and each check catches the drift it is there for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.checks import (
    compose_problems,
    dockerfile_problems,
    k8s_problems,
    resolve_command,
    variable_problems,
)
from tests.deploy.files import (
    COMPOSE_VALUES,
    K8S,
    Dockerfile,
    load_compose,
    load_dockerfile,
    load_k8s,
    parse_dockerfile,
)
from tests.deploy.files import DOCKERFILE as DOCKERFILE_PATH


def test_the_dockerfile_matches_the_code() -> None:
    assert dockerfile_problems(load_dockerfile()) == []


def test_the_compose_file_matches_the_code() -> None:
    assert compose_problems(load_compose(), COMPOSE_VALUES) == []


def test_the_kubernetes_manifests_match_the_code() -> None:
    assert k8s_problems(load_k8s(), load_dockerfile()) == []


def test_every_kubernetes_file_is_parsed_and_known() -> None:
    manifests = load_k8s()
    files = {"api.yaml", "worker.yaml", "migrate-job.yaml", "configmap.yaml", "secret.example.yaml"}
    assert set(manifests) == files
    kinds = sorted(doc["kind"] for documents in manifests.values() for doc in documents)
    assert kinds == sorted(
        [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Deployment",
            "PodDisruptionBudget",
            "Job",
            "ConfigMap",
            "Secret",
        ]
    )
    assert (K8S / "rollout.sh").stat().st_mode & 0o111, "rollout.sh must be executable"


def test_the_commands_are_parsed_by_the_real_cli() -> None:
    command, context = resolve_command(["run", "--no-worker"])
    assert command.name == "run"
    assert context.params["sync_worker"] is False
    command, context = resolve_command(["worker", "--concurrency", "4"])
    assert (command.name, context.params["concurrency"]) == ("worker", 4)
    assert resolve_command(["migrate"])[0].name == "migrate"


# --- each check can fail: the real file, broken one way, is caught -----------------------------


def _dockerfile_with(old: str, new: str) -> Dockerfile:
    text = DOCKERFILE_PATH.read_text()
    assert old in text
    return parse_dockerfile(text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('CMD ["run", "--no-worker"]', 'CMD ["run", "--no-wroker"]', "No such option"),
        ('CMD ["run", "--no-worker"]', 'CMD ["run"]', "run --no-worker"),
        ('ENTRYPOINT ["billplane"]', 'ENTRYPOINT ["billplan"]', "ENTRYPOINT"),
        ("USER 10001:10001", "USER root", "non-root USER"),
        ("BILLPLANE_PORT=8000", "BILLPLANE_PORT=8080", "EXPOSE [8000]"),
        ("BILLPLANE_HOST=0.0.0.0", "BILLPLANE_HSOT=0.0.0.0", "BILLPLANE_HSOT is not a variable"),
        ("+ '/health'", "+ '/healthz'", "GET /healthz is not a route"),
        ("python:3.11-slim-bookworm", "python:3.12-slim-bookworm", "satisfies"),
        ("uv sync --locked --no-dev --no-editable", "uv sync --no-dev --no-editable", "--locked --no-dev"),
    ],
)
def test_a_broken_dockerfile_is_caught(old: str, new: str, expected: str) -> None:
    problems = dockerfile_problems(_dockerfile_with(old, new))
    assert any(expected in problem for problem in problems), problems


def _compose_problems_after(
    change: Callable[[dict[str, Any]], None], values: dict[str, str] | None = None
) -> list[str]:
    compose = copy.deepcopy(load_compose())
    change(compose["services"])
    return compose_problems(compose, COMPOSE_VALUES if values is None else values)


def _rename(env: dict[str, Any], old: str, new: str) -> None:
    env[new] = env.pop(old)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: _rename(s["api"]["environment"], "BILLPLANE_ADMIN_KEY", "BILLPLANE_ADMIN_KYE"), "ADMIN_KYE is not"),
        (lambda s: _rename(s["api"]["environment"], "BILLPLANE_ADMIN_KEY", "BILLPLANE_HOME"), "ADMIN_KEY is required"),
        (lambda s: s["api"]["environment"].update(BILLPLANE_PORT="8001"), "the server binds 8001"),
        (lambda s: s["api"]["environment"].update(BILLPLANE_PORT="99999"), "settings refuse"),
        (lambda s: s["api"].update(command=["run"]), "run --no-worker"),
        (lambda s: s["migrate"].update(command=["db", "upgrade"]), "must run `billplane migrate`"),
        (lambda s: s["migrate"].update(command=["migrat"]), "no command 'migrat'"),
        (lambda s: s["worker"].update(command=["worker", "--once"]), "long-running"),
        (lambda s: s["worker"].update(image="billplane:0.0.9"), "is not billplane:"),
        (lambda s: s["worker"].pop("healthcheck"), "must be disabled"),
        (lambda s: s["api"].pop("depends_on"), "after migrate completed"),
        (lambda s: s["postgres"].pop("volumes"), "on a volume"),
        (lambda s: s["api"]["environment"].update(BILLPLANE_PROVIDER_STRIPEE_BASE_URL="x"), "no installed provider"),
    ],
)
def test_a_broken_compose_file_is_caught(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    problems = _compose_problems_after(change)
    assert any(expected in problem for problem in problems), problems


def test_compose_refuses_to_start_without_its_secrets() -> None:
    problems = _compose_problems_after(lambda _: None, values={"POSTGRES_PASSWORD": "x"})
    assert any("compose needs BILLPLANE_SECRET_KEY" in problem for problem in problems), problems


def _k8s_problems_after(change: Callable[[dict[str, list[dict[str, Any]]]], None]) -> list[str]:
    manifests = copy.deepcopy(load_k8s())
    change(manifests)
    return k8s_problems(manifests, load_dockerfile())


def _api(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    container: dict[str, Any] = manifests["api.yaml"][0]["spec"]["template"]["spec"]["containers"][0]
    return container


def _job(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    container: dict[str, Any] = manifests["migrate-job.yaml"][0]["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: _api(m)["readinessProbe"]["httpGet"].update(path="/ready"), "GET /ready is not a route"),
        (lambda m: _api(m)["livenessProbe"]["tcpSocket"].update(port=9000), "livenessProbe asks port 9000"),
        (lambda m: _api(m)["ports"][0].update(containerPort=8080), "containerPort [8080]"),
        (lambda m: m["configmap.yaml"][0]["data"].update(BILLPLANE_PORT="9000"), "not BILLPLANE_PORT 9000"),
        (lambda m: m["configmap.yaml"][0]["data"].update(BILLPLANE_WORKRES="2"), "BILLPLANE_WORKRES is not"),
        (lambda m: _api(m)["env"].pop(2), "BILLPLANE_ADMIN_KEY is required"),
        (lambda m: _api(m).update(args=["run", "--worker"]), "run --no-worker"),
        (lambda m: _job(m).update(args=["tenants", "migrate"]), "must run `billplane migrate`"),
        (lambda m: _job(m)["env"][0]["valueFrom"]["secretKeyRef"].update(key="DATABASE_URL"), "does not hold"),
        (lambda m: _api(m).update(image="billplane:latest"), "is not billplane:"),
        (lambda m: _api(m).pop("resources"), "requests and limits"),
        (lambda m: m["api.yaml"][0]["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0), "non-root"),
        (lambda m: m["api.yaml"][1]["spec"]["ports"][0].update(targetPort="web"), "targetPort web"),
        (lambda m: m["api.yaml"][2]["spec"]["scaleTargetRef"].update(name="api"), "targets no Deployment"),
        (
            lambda m: m["worker.yaml"][0]["spec"]["template"]["spec"]["containers"][0].update(
                readinessProbe={"httpGet": {"path": "/health", "port": 8000}}
            ),
            "serves no HTTP",
        ),
    ],
)
def test_broken_kubernetes_manifests_are_caught(
    change: Callable[[dict[str, list[dict[str, Any]]]], None], expected: str
) -> None:
    problems = _k8s_problems_after(change)
    assert any(expected in problem for problem in problems), problems


def test_development_only_variables_are_refused() -> None:
    assert variable_problems(["BILLPLANE_HOME", "BILLPLANE_FAULT"], "x") == [
        "x: BILLPLANE_HOME is not a variable billplane reads",
        "x: BILLPLANE_FAULT is not a variable billplane reads",
    ]
    assert variable_problems(["BILLPLANE_PROVIDER_SANDBOX_WEBHOOK_URL", "POSTGRES_USER"], "x") == []
