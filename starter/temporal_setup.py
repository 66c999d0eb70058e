"""Namespace preparation: custom search attributes and retention.

Both functions are idempotent so the supervisor can run them on every start
(the dev server only applies ``--search-attribute`` flags to a fresh database,
so attributes added in a later release must be registered here).

``python -m starter.temporal_setup`` runs both against the configured Temporal;
``python -m starter.temporal_setup check-worker`` exits 0 only while a worker
polls the ``firewatch`` task queue (used as a container healthcheck).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueKind, TaskQueueType
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from starter.connection import TASK_QUEUE, connect
from workflows.search_attributes import ALL_KEYS

log = logging.getLogger(__name__)

SEARCH_ATTRIBUTES: dict[str, SearchAttributeIndexedValueType] = {
    key.name: key.indexed_value_type for key in ALL_KEYS
}

# Monthly and quarterly incident reports read closed incidents from visibility.
DEFAULT_RETENTION_DAYS = 120

# CLI spelling used by `temporal server start-dev --search-attribute NAME=Type`.
_CLI_TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class SearchAttributeConflict(RuntimeError):
    """An attribute exists on the namespace with a different type than Firewatch needs."""


# One partition per task queue (the server's default is 4). Firewatch's queues carry a few
# tasks a second, far below what one partition serves, and with four a task that lands in a
# partition no poller is waiting on can sit there a second or more: a retried page (its
# worker died) did, on the dev server. Production: deploy/temporal/dynamicconfig.yaml.
ONE_PARTITION_FLAGS = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
]


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        flags += ["--search-attribute", f"{name}={_CLI_TYPE_NAMES[kind]}"]
    return flags


async def _registered(client: Client) -> dict[str, int]:
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return {**dict(resp.system_attributes), **dict(resp.custom_attributes)}


def _type_name(value: int) -> str:
    return IndexedValueType.Name(IndexedValueType.ValueType(value))


def _missing(registered: dict[str, int]) -> dict[str, SearchAttributeIndexedValueType]:
    missing: dict[str, SearchAttributeIndexedValueType] = {}
    for name, kind in SEARCH_ATTRIBUTES.items():
        have = registered.get(name)
        if have is None:
            missing[name] = kind
        elif have != int(kind):
            raise SearchAttributeConflict(
                f"search attribute {name} is registered as {_type_name(have)}"
                f" but Firewatch needs {_type_name(kind)}"
            )
    return missing


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the missing Firewatch search attributes; return the names added.

    Raises :class:`SearchAttributeConflict` when a name exists with another type (the
    SQLite/SQL visibility store silently keeps the old type instead of failing).
    """
    added: list[str] = []
    # A few rounds: another process (second supervisor, compose setup job) may add
    # some of the same attributes concurrently, which fails the whole batch.
    for _ in range(5):
        missing = _missing(await _registered(client))
        if not missing:
            return added
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={
                        name: IndexedValueType.ValueType(int(kind))
                        for name, kind in missing.items()
                    },
                )
            )
        except RPCError as err:
            # Some visibility stores reject a batch naming an existing attribute, and
            # concurrent namespace updates can abort; re-list and add what is still missing.
            if err.status not in (RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.ABORTED):
                raise
            continue
        added += list(missing)
    if missing := _missing(await _registered(client)):
        raise RuntimeError(f"could not register search attributes: {sorted(missing)}")
    return added


async def ensure_retention(client: Client, days: int = DEFAULT_RETENTION_DAYS) -> timedelta:
    """Raise the namespace retention to at least ``days``; return the effective value."""
    wanted = timedelta(days=days)
    desc = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    current = desc.config.workflow_execution_retention_ttl.ToTimedelta()
    if current >= wanted:
        return current
    # Only the retention field is set: the server leaves unset config fields alone.
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace,
            config=NamespaceConfig(
                workflow_execution_retention_ttl=Duration(seconds=int(wanted.total_seconds()))
            ),
        )
    )
    log.info("namespace %s retention raised from %s to %s", client.namespace, current, wanted)
    return wanted


async def workflow_pollers(client: Client, task_queue: str = TASK_QUEUE) -> list[PollerInfo]:
    """Workers that recently long-polled ``task_queue`` for workflow tasks."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return list(resp.pollers)


async def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m starter.temporal_setup")
    parser.add_argument(
        "command",
        nargs="?",
        default="setup",
        choices=["setup", "check-worker"],
        help="setup (default): search attributes + retention; check-worker: exit 0 if polled",
    )
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS)
    args = parser.parse_args(argv)

    client = await connect()
    if args.command == "check-worker":
        pollers = len(await workflow_pollers(client))
        print(f"{pollers} poller(s) on task queue {TASK_QUEUE}")
        return 0 if pollers else 1

    added = await ensure_search_attributes(client)
    print(f"search attributes: {', '.join(added) + ' added' if added else 'all present'}")
    retention = await ensure_retention(client, args.retention_days)
    print(f"namespace {client.namespace} retention: {retention.days} days")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rc = asyncio.run(_main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the Temporal client's Rust threads can crash it at exit
    # (sdk-python issue #300) and turn success into a segfault status.
    os._exit(rc)
