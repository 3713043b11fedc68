"""The platform's error responses: an HTTP status plus a string business code."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the emulator refuses, with the status and code the real service would use."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self, request_id: str | None) -> dict[str, Any]:
        """``{"error": {"code", "message"}}``, plus ``request_id`` when the caller sent one."""
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        if request_id:
            body["request_id"] = request_id
        return body


def bad_request(message: str) -> ApiError:
    """The catch-all "illegal parameter" error (400 / 1210)."""
    return ApiError(400, "1210", message)
