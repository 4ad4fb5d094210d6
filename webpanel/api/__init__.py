"""The JSON API at /api/v1, for scripts and shops (keys, not sessions)."""

from flask import Blueprint

from webpanel.api.problems import ApiProblem
from webpanel.api.problems import problem_response
from webpanel.api.spec import Api

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp, title="infinity", version="1")
bp.register_error_handler(ApiProblem, problem_response)

# The operations register themselves on import.
from webpanel.api import clients  # noqa: F401
from webpanel.api import docs  # noqa: F401
from webpanel.api import servers  # noqa: F401
