"""deploy/k8s/rollout.sh migrates before it rolls out, and rolls out nothing when migrations fail.

kubectl is outside billplane: a stand-in on PATH records each call and answers the Job's state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.files import K8S

IMAGE = "registry.example.com/billplane:9.9.9"
FAKE_KUBECTL = """#!{python}
import json, os, sys
log = os.environ["KUBECTL_LOG"]
stdin = sys.stdin.read() if "-f" in sys.argv and sys.argv[sys.argv.index("-f") + 1] == "-" else ""
with open(log, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
if sys.argv[1:3] == ["get", "job"]:
    print(os.environ["JOB_STATE"], end="")
"""


def _rollout(tmp_path: Path, job_state: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "KUBECTL_LOG": str(log), "JOB_STATE": job_state}
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        ["/bin/sh", str(K8S / "rollout.sh"), IMAGE], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def _applied_kinds(call: dict[str, object]) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(str(call["stdin"])) if doc]


def test_migrations_run_and_finish_before_the_deployments_roll_out(tmp_path: Path) -> None:
    result, calls = _rollout(tmp_path, "True/")
    assert result.returncode == 0, result.stderr
    steps = [[str(word) for word in call["argv"]] for call in calls]  # type: ignore[attr-defined]
    assert steps[0] == ["apply", "-f", f"{K8S}/configmap.yaml"]
    assert steps[1][:3] == ["delete", "job", "billplane-migrate"]
    assert _applied_kinds(calls[2]) == ["Job"]
    assert steps[3][:3] == ["get", "job", "billplane-migrate"]
    assert _applied_kinds(calls[4]) == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert _applied_kinds(calls[5]) == ["Deployment", "PodDisruptionBudget"]
    assert [step[:3] for step in steps[6:8]] == [
        ["rollout", "status", "deployment/billplane-api"],
        ["rollout", "status", "deployment/billplane-worker"],
    ]
    # Then again, for the tenants the previous version's pods created during the rollout.
    assert steps[8][:3] == ["delete", "job", "billplane-migrate"]
    assert _applied_kinds(calls[9]) == ["Job"]
    assert [step[:3] for step in steps[10:]] == [["get", "job", "billplane-migrate"]]
    for call in (calls[2], calls[4], calls[5], calls[9]):  # every workload runs the image asked for
        images = [
            container["image"]
            for doc in yaml.safe_load_all(str(call["stdin"]))
            if doc and doc["kind"] in {"Deployment", "Job"}
            for container in doc["spec"]["template"]["spec"]["containers"]
        ]
        assert images == [IMAGE]


@pytest.mark.parametrize("job_state", ["/True", "True/"])
def test_a_failed_migration_rolls_out_nothing(tmp_path: Path, job_state: str) -> None:
    result, calls = _rollout(tmp_path, job_state)
    deployed = [call for call in calls if "Deployment" in _applied_kinds(call)] if calls[2:] else []
    if job_state == "/True":
        assert result.returncode == 1
        assert "migrations failed" in result.stderr
        assert deployed == []
    else:  # the control case: the same script with a successful Job deploys both
        assert len(deployed) == 2
