"""Bad input to the API: a problem with a message per field, and nothing saved."""

from __future__ import annotations

import io
import json
import re

import pytest
from flask import Flask

from tests.api_support import BAD_CREATES
from tests.api_support import BAD_EDITS
from tests.api_support import Caller
from tests.api_support import assert_problem
from tests.api_support import fresh
from tests.api_support import snapshot
from webpanel.api.schemas import NAME_PATTERN
from webpanel.api.schemas import PATTERN_MESSAGES
from webpanel.models import Client
from webpanel.services import clients as service
from webpanel.services.inputs import ClientError
from webpanel.services.inputs import clean_name
from webpanel.services.inputs import hidden_runs
from xray.simulator import Simulator


def assert_refused(response, status: int, field: str | None) -> None:
    """A problem with that status, naming the field in words, no library text."""
    body = assert_problem(response, status)
    if status == 422:
        assert body["errors"], "a 422 names what is wrong"
    assert "pydantic" not in response.get_data(as_text=True)
    if field is not None:
        assert field in body["errors"], body["errors"]
        assert body["errors"][field].endswith(".")


@pytest.mark.parametrize(
    ("request_", "status", "field"), BAD_CREATES.values(), ids=BAD_CREATES.keys()
)
def test_it_refuses_a_bad_new_client_and_saves_nothing(
    writer: Caller,
    alice: Client,
    simulator: Simulator,
    request_: dict,
    status: int,
    field: str | None,
):
    before = snapshot(simulator)

    response = writer.post("/clients", **request_)

    assert_refused(response, status, field)
    assert Client.select().count() == 1
    assert snapshot(simulator) == before


def test_it_answers_every_wrong_field_at_once(writer: Caller, alice: Client):
    response = writer.post(
        "/clients",
        json={"name": "x", "limit": "5", "days": 1.5, "reset_strategy": 7, "extra": 1},
    )

    errors = assert_problem(response, 422)["errors"]
    assert {"limit", "days", "reset_strategy", "extra"} <= set(errors)
    assert errors["extra"] == "Unknown field."
    assert Client.select().count() == 1


def test_it_names_an_unknown_field_as_such(writer: Caller, app: Flask):
    response = writer.post("/clients", json={"name": "x", "data_limit": 5})

    assert assert_problem(response, 422)["errors"] == {"data_limit": "Unknown field."}
    assert Client.select().count() == 0


@pytest.mark.parametrize(
    ("request_", "status", "field"), BAD_EDITS.values(), ids=BAD_EDITS.keys()
)
def test_it_refuses_a_bad_change_and_saves_nothing(
    writer: Caller,
    alice: Client,
    simulator: Simulator,
    request_: dict,
    status: int,
    field: str | None,
):
    before = snapshot(simulator)

    response = writer.patch(f"/clients/{alice.email}", **request_)

    assert_refused(response, status, field)
    assert snapshot(simulator) == before


@pytest.mark.parametrize(
    "sent",
    [{"days": 1.5}, {"days": "3"}, {"days": 0}, {"days": 36_501}, {}, {"weeks": 2}],
)
def test_it_refuses_bad_days_to_extend_by(
    writer: Caller, alice: Client, simulator: Simulator, sent: dict
):
    before = snapshot(simulator)

    response = writer.post(f"/clients/{alice.email}/extend", json=sent)

    assert assert_problem(response, 422)["errors"]
    assert snapshot(simulator) == before


def test_it_refuses_to_hold_a_client_past_the_longest_hold(
    writer: Caller, app: Flask, simulator: Simulator
):
    waiting = service.create_client("waiting", days=36_500, on_hold=True)
    before = snapshot(simulator)

    response = writer.post(f"/clients/{waiting.email}/extend", json={"days": 1})

    assert "days" in assert_problem(response, 409)["errors"]
    assert fresh(waiting).on_hold_days == 36_500
    assert snapshot(simulator) == before


# Errors outside the operations


def test_it_answers_an_unknown_api_address_with_a_problem(reader: Caller):
    response = reader.get("/nope")

    assert_problem(response, 404)


def test_it_answers_a_wrong_method_with_a_problem_and_the_allowed_ones(
    reader: Caller,
):
    response = reader("PUT", "/stats")

    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert "PUT" not in response.headers["Allow"]


def test_it_names_the_methods_a_client_address_takes(writer: Caller, alice: Client):
    response = writer("PUT", f"/clients/{alice.email}", json={"name": "x"})

    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allowed
    assert fresh(alice).name == "Alice"


def test_it_refuses_a_chunked_body_over_64_kib_without_reading_it_all(
    writer: Caller, app: Flask
):
    padded = b'{"name": "spacey"' + b" " * (200 * 1024) + b"}"
    # No Content-Length, as a chunked upload arrives: the length is unknown.
    response = writer.post(
        "/clients",
        input_stream=io.BytesIO(padded),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert_problem(response, 413)
    assert Client.select().count() == 0


def test_it_explains_a_name_without_a_visible_character_in_words(writer: Caller):
    response = writer.post("/clients", json={"name": "   "})

    body = assert_problem(response, 422)
    assert body["errors"]["name"] == PATTERN_MESSAGES["name"]
    assert "\\x" not in json.dumps(body)


def test_its_name_pattern_and_the_service_refuse_the_same_characters():
    pattern = re.compile(NAME_PATTERN)
    for first, last in hidden_runs():
        for ch in {first, last}:
            name = f"a{ch}b"
            assert not pattern.search(name), hex(ord(ch))
            with pytest.raises(ClientError):
                clean_name(name)
    for fine in ("Иван", "🐱\u200d👤", "ﻻ", "a b"):
        assert pattern.search(fine)
        assert clean_name(fine) == fine
