"""A GraphQL call to a Dagster webserver, as the UI makes it (the topology and Docker tests)."""

import json
import urllib.request
from typing import Any


def graphql(
    url: str, query: str, variables: dict[str, Any] | None = None, timeout: float = 30
) -> dict[str, Any]:
    """The ``data`` of the answer to ``query`` at ``url``/graphql; an answer with errors fails."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = json.loads(resp.read())
    assert not payload.get("errors"), payload["errors"]
    return payload["data"]
