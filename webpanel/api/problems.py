"""Errors as RFC 9457 problem documents (application/problem+json)."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Response

PROBLEM_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised by a handler: becomes a problem response, nothing saved."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(problem: ApiProblem) -> Response:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=problem.status,
        mimetype=PROBLEM_TYPE,
        headers=problem.headers,
    )


def problem(status: int, detail: str, **kwargs) -> Response:
    return problem_response(ApiProblem(status, detail, **kwargs))
