"""`ServeError`: a request the server refuses, as an HTTP status and a one-line JSON error.

Every refusal names its reason (a label for `/metrics`) and, for a limit, the setting that sets it,
so a client knows what to change: {"error": "...", "limit": {"name": "max_pixels", "value": 4000000}}.
"""

from __future__ import annotations

from typing import Any


class ServeError(Exception):
    def __init__(self, status: int, message: str, *, reason: str, limit: tuple[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.limit = limit
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.limit is not None:
            body["limit"] = {"name": self.limit[0], "value": self.limit[1]}
        return body
