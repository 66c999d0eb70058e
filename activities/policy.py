"""Policy snapshot: each incident keeps the policy it opened under."""

from __future__ import annotations

from temporalio import activity

from activities.config import PolicyStore
from domain.policy import Policy


class PolicyActivities:
    def __init__(self, store: PolicyStore) -> None:
        self._store = store

    @activity.defn
    def load_policy_snapshot(self) -> Policy:
        return self._store.get()
