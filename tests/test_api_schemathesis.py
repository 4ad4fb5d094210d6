"""Schemathesis against the whole OpenAPI document, over real HTTP on loopback.

It generates valid and invalid requests for every operation (and chains them
through the document's links), and fails on a server error, a response the
document does not allow, invalid data accepted or valid data refused.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from webpanel.api import api
from webpanel.services.api_keys import create_key
from webpanel.services.clients import create_client

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# A fixed seed keeps CI repeatable; change it to explore other inputs.
SEED = "20261204"


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app on a real HTTP server, on a free loopback port."""
    create_client("Алиса #1")
    create_client("bob")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def run_schemathesis(base: str, key: str, tmp_path: Path, examples: int) -> str:
    """Run the CLI; return its output once it passed every check."""
    report = tmp_path / "junit.xml"
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{base}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--max-examples",
            str(examples),
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,  # its cache and reports stay out of the tree
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert not re.search(r"\d+ failures?\b", output), output[-6000:]
    assert "❌" not in output, output[-6000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) == len(api.operations), output[-3000:]
    assert report.exists()
    return output


def test_it_finds_no_error_with_a_write_key(served: str, tmp_path: Path) -> None:
    _, key = create_key("fuzz-write", "write")
    output = run_schemathesis(served, key, tmp_path, examples=150)
    assert re.search(r"\d+ generated, \d+ passed", output), output[-3000:]


def test_it_finds_no_error_with_a_read_key(served: str, tmp_path: Path) -> None:
    _, key = create_key("fuzz-read", "read")
    output = run_schemathesis(served, key, tmp_path, examples=40)
    # Every write operation, and only those, refused the key.
    writes = [op for op in api.operations if op.scope == "write"]
    assert f"403 Forbidden ({len(writes)} operations)" in output, output[-3000:]
