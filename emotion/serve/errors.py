"""A client's mistake as HTTP: a 4xx status and a JSON `{error, fix}` body."""

from __future__ import annotations


class ApiError(Exception):
    """What the client did wrong (`error`) and what to send instead (`fix`)."""

    def __init__(self, status: int, error: str, fix: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.fix = fix

    def body(self) -> dict[str, str]:
        return {"error": self.error, "fix": self.fix}
