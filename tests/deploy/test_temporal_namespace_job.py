"""docker-compose.prod.yml's temporal-namespace job, run for real: its script with the
``temporal`` CLI (the same 1.9 line as the admin-tools image) against the dev server, on a
fresh namespace, twice."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from starter.temporal_setup import SEARCH_ATTRIBUTES, dev_server_flags

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "temporal" / "namespace.sh"


def run_job(target: str, namespace: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/"),
        "TEMPORAL_ADDRESS": target,
    }
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), namespace, "120d", *dev_server_flags()[1::2]],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


async def test_namespace_job_creates_then_leaves_alone(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    target = client.service_client.config.target_host
    namespace = f"fw-prod-{uuid.uuid4().hex[:8]}"

    first = run_job(target, namespace)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"namespace {namespace} created (retention 120d)" in first.stdout
    for name in SEARCH_ATTRIBUTES:
        assert f"search attribute {name} (" in first.stdout, first.stdout

    desc = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    assert desc.config.workflow_execution_retention_ttl.ToTimedelta() == timedelta(days=120)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    registered = dict(listed.custom_attributes)
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert registered.get(name) == int(kind), (name, registered.get(name))

    second = run_job(target, namespace)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"namespace {namespace} exists" in second.stdout
    assert "created" not in second.stdout
    assert second.stdout.count("exists") == 1 + len(SEARCH_ATTRIBUTES)
