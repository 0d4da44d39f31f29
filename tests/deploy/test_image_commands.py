"""The Dockerfile's commands, run for real without a Docker engine.

The build stage's COPY and `uv sync` instructions are replayed into a temporary /app (from the
repository, offline, from uv's cache); then the compose services' commands run from the
environment that built: `migrate` on an empty database, the API, the image's HEALTHCHECK against
it, and the worker once. Two build settings are relaxed and only them: UV_COMPILE_BYTECODE (writing
.pyc files for every package takes ~10 s here and changes no behaviour) and UV_LINK_MODE (the image
copies out of a build cache mount; here hardlinks from the cache are as good).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.checks import install_stage
from tests.deploy.files import (
    COMPOSE_VALUES,
    REPO,
    Dockerfile,
    compose_environment,
    load_compose,
    load_dockerfile,
    stage_args,
    stage_env,
)

# Several processes that each import the whole stack, on two cores shared with other suites: the
# suite's 120 s per test is too tight for this module when the machine is busy (~15 s when idle).
pytestmark = pytest.mark.timeout(360)

RELAXED = {"UV_COMPILE_BYTECODE": "0", "UV_LINK_MODE": "hardlink"}
# Generous: the machine's two cores are shared, and the API imports its whole stack first.
START_SECONDS = 60


def _uv_dir(tmp: Path) -> Path:
    """A directory holding an executable `uv` (the Dockerfile's RUN lines call it by name)."""
    found = shutil.which("uv")
    if found:
        return Path(found).parent
    shim = tmp / "uv-bin"
    shim.mkdir()
    (shim / "uv").write_text(f'#!/bin/sh\nexec "{shutil.which("python3") or sys.executable}" -m uv "$@"\n')
    (shim / "uv").chmod(0o755)
    return shim


def build_like_the_dockerfile(dockerfile: Dockerfile, root: Path) -> Path:
    """Replay the install stage into ``root``; return its WORKDIR (the image's /app)."""
    stage = install_stage(dockerfile)
    assert stage is not None
    workdir = root
    env = {key: value for key, value in os.environ.items() if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    env |= dockerfile.global_args | stage_args(stage) | stage_env(stage) | RELAXED
    env |= {"UV_OFFLINE": "1", "PATH": f"{_uv_dir(root)}:{env['PATH']}"}  # no test reaches the registry
    for item in stage.instructions:
        if item.keyword == "WORKDIR":
            workdir = root / item.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif item.keyword == "COPY" and "--from=" not in item.arguments:
            *sources, target = shlex.split(item.arguments)
            destination = workdir / target
            for source in sources:
                path = REPO / source
                if path.is_dir():
                    shutil.copytree(path, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    into = destination / path.name if target.endswith("/") else destination
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, into)
        elif item.keyword == "RUN":
            command = " ".join(word for word in item.arguments.split(" ") if not word.startswith("--mount="))
            result = subprocess.run(  # noqa: S603 - the Dockerfile's own RUN line
                ["/bin/sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"Dockerfile line {item.line}: {command}\n{result.stderr}"
    return workdir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /app: the locked environment, installed as the Dockerfile installs it."""
    return build_like_the_dockerfile(load_dockerfile(), tmp_path_factory.mktemp("image"))


def _runtime_env(image: Path, service: str, database_url: str, **overrides: str) -> dict[str, str]:
    """The runtime stage's ENV (PATH to the environment's bin first) plus the compose service's."""
    runtime = load_dockerfile().stages[-1]
    env = {key: os.environ[key] for key in ("HOME", "LANG") if key in os.environ}
    env |= stage_env(runtime)
    env["PATH"] = f"{image / '.venv' / 'bin'}:/usr/bin:/bin"
    env |= compose_environment(load_compose()["services"][service], COMPOSE_VALUES)
    env["BILLPLANE_DATABASE_URL"] = database_url  # the compose file names its own postgres host
    return env | overrides


def _command(service: str) -> list[str]:
    runtime = load_dockerfile().stages[-1]
    entrypoint = runtime.last("ENTRYPOINT")
    assert entrypoint is not None
    return [*(entrypoint.exec_form() or []), *load_compose()["services"][service]["command"]]


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    healthcheck = load_dockerfile().stages[-1].last("HEALTHCHECK")
    assert healthcheck is not None
    command = healthcheck.exec_form()
    assert command
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603


def test_the_image_environment_is_locked_non_dev_and_not_editable(image: Path) -> None:
    python = image / ".venv" / "bin" / "python"
    probe = (
        "import importlib.util as u, billplane, billplane.db.paths as p;"
        "print(billplane.__file__); print(p.control_scripts().is_dir());"
        "print(*(bool(u.find_spec(m)) for m in ('billplane_stripe', 'billplane_paypal', 'pytest', 'mypy')))"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=30, check=True)  # noqa: S603
    location, migrations, installed = result.stdout.splitlines()
    assert location.startswith(str(image / ".venv")), "billplane must be installed, not linked to the sources"
    assert migrations == "True"  # the alembic tracks travel inside the wheel
    assert installed == "True True False False"  # PROVIDERS=all: the plugins; --no-dev: no test tools


def test_the_compose_commands_run_from_the_image(image: Path, empty_database_url: str, tmp_path: Path) -> None:
    migrate = subprocess.run(  # noqa: S603
        _command("migrate"),
        env=_runtime_env(image, "migrate", empty_database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "control schema is at head" in migrate.stdout

    port = str(_free_port())
    env = _runtime_env(image, "api", empty_database_url, BILLPLANE_HOST="127.0.0.1", BILLPLANE_PORT=port)
    env["BILLPLANE_WORKERS"] = "1"  # one process is enough to prove the command serves
    assert _healthcheck(env).returncode != 0  # nothing listens yet: the check can fail
    log = tmp_path / "api.log"
    with log.open("w") as output:
        server = subprocess.Popen(_command("api"), env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            deadline = time.monotonic() + START_SECONDS
            while (check := _healthcheck(env)).returncode != 0:
                assert server.poll() is None, f"the API exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"no healthy API after {START_SECONDS}s: {check.stderr}"
                time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(timeout=15)

    worker = subprocess.run(  # noqa: S603 - the worker service's command, once instead of forever
        [*_command("worker"), "--once"],
        env=_runtime_env(image, "worker", empty_database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr
