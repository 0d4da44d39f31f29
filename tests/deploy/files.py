"""Reading the deployment files as the tools that consume them would: Dockerfile instructions,
compose with its variable interpolation, Kubernetes documents."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
# Values for compose's required ${VARIABLES}: long enough for the settings' 32-character minimum.
COMPOSE_VALUES = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "BILLPLANE_SECRET_KEY": "compose-test-secret-key-" + "s" * 32,
    "BILLPLANE_ADMIN_KEY": "compose-test-admin-key-" + "a" * 32,
}


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in f" {text}" else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        return [str(item) for item in value]

    def options(self) -> dict[str, str]:
        """``--name=value`` flags before the instruction's arguments (HEALTHCHECK, COPY, RUN)."""
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.arguments.split(" CMD ", 1)[0]))


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with their continuation lines joined and comment lines dropped, by stage."""
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # Docker drops comment lines inside continuations
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in instructions:
        if item.keyword == "FROM":
            words = item.arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, words[0]))
        elif not stages:
            if item.keyword == "ARG":
                key, _, value = item.arguments.partition("=")
                global_args[key] = value
        else:
            stages[-1].instructions.append(item)
    return Dockerfile(global_args, stages)


def stage_args(stage: Stage) -> dict[str, str]:
    args = {}
    for item in stage.all("ARG"):
        key, _, value = item.arguments.partition("=")
        args[key] = value
    return args


def stage_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in stage.all("ENV"):
        for key, value in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', item.arguments):
            env[key] = value.strip('"')
    return env


def load_dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:\?|:-)([^}]*))?\}")


def interpolate(value: str, values: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (an error when unset)."""

    def replace(match: re.Match[str]) -> str:
        name, operator, operand = match.group(1), match.group(2), match.group(3)
        if values.get(name):
            return values[name]
        if operator == ":-":
            return operand
        raise KeyError(f"compose needs {name} ({operand or 'required'})")

    return _INTERPOLATION.sub(replace, value)


def compose_environment(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):  # the KEY=value list form
        raw = dict(item.split("=", 1) for item in raw)
    return {str(key): interpolate(str(value), values) for key, value in raw.items()}


def load_k8s() -> dict[str, list[dict[str, Any]]]:
    """Every manifest under deploy/k8s by file name (several documents a file)."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc] for path in sorted(K8S.glob("*.yaml"))
    }


def pod_specs(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> pod spec, for every workload (Deployment, Job)."""
    specs = {}
    for documents in manifests.values():
        for doc in documents:
            if doc["kind"] in {"Deployment", "Job"}:
                specs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc["spec"]["template"]["spec"]
    return specs
