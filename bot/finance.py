"""Who may act: the finance team from FINANCE_USERS and FINANCE_USERGROUP."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


class FinanceTeam:
    """The finance team: decides whether a Slack user may change anything.

    The user group's members are fetched with usergroups.users.list and kept
    for `cache_seconds`. When the fetch fails the last known members are used,
    and nobody from the group is let in before a fetch has worked.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        user_ids: frozenset[str],
        usergroup: str = "",
        cache_seconds: float = GROUP_CACHE_SECONDS,
    ) -> None:
        self._client = client
        self._user_ids = user_ids
        self._usergroup = usergroup
        self._cache_seconds = cache_seconds
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def includes(self, user_id: str) -> bool:
        if not user_id:
            return False
        if user_id in self._user_ids:
            return True
        if not self._usergroup:
            return False
        return user_id in self._group_members()

    def _group_members(self) -> frozenset[str]:
        with self._lock:
            now = time.monotonic()
            fresh = (
                self._fetched_at is not None
                and now - self._fetched_at < self._cache_seconds
            )
            if fresh:
                return self._members
            try:
                response = self._client.usergroups_users_list(usergroup=self._usergroup)
            except SlackApiError as error:
                logger.error(
                    "usergroups.users.list failed for %s: %s",
                    self._usergroup,
                    error.response.get("error"),
                )
                return self._members
            self._members = frozenset(str(user) for user in response["users"] or [])
            self._fetched_at = now
            return self._members
