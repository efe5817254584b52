"""The playground's routes: the page and the JSON compress endpoint (bearer token, 4xx JSON)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from edge_lingua.playground import (
    COMPRESS_PATH,
    MAX_BODY_BYTES,
    BadRequest,
    parse_request,
    playground_app,
)

TEXT = ("The Apollo 11 mission landed the first humans on the Moon on July 20, 1969. Neil "
        "Armstrong and Buzz Aldrin spent about two hours outside the lunar module.")


@pytest.fixture(scope="module")
def client(compressor):
    return TestClient(playground_app(compressor, token="s3cret"))


AUTH = {"Authorization": "Bearer s3cret"}


def test_page_is_self_contained(client) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/html")
    html = response.text
    for needle in ('id="text"', 'id="question"', 'id="rate"', "v1/edge-lingua/compress"):
        assert needle in html
    assert "http://" not in html and "https://" not in html and "@import" not in html


def test_compress_returns_words_mask_and_counts(client, compressor) -> None:
    response = client.post(COMPRESS_PATH, json={"text": TEXT, "rate": 0.4}, headers=AUTH)
    assert response.status_code == 200
    data = response.json()
    expected = compressor.compress(TEXT, rate=0.4)
    assert data["words"] == expected.words[0]
    assert data["kept"] == expected.kept_mask[0]
    assert data["compressed_prompt"] == expected.compressed_prompt
    assert (data["origin_tokens"], data["compressed_tokens"]) == (
        expected.origin_tokens, expected.compressed_tokens)
    assert data["saving"] == round(1 - expected.compressed_tokens / expected.origin_tokens, 4)
    assert data["latency_ms"] > 0 and data["question_used"] is False


def test_target_token(client) -> None:
    data = client.post(COMPRESS_PATH, json={"text": TEXT, "target_token": 8},
                       headers=AUTH).json()
    assert data["compressed_tokens"] <= 8


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic s3cret"}])
def test_wrong_or_missing_token_is_401_json(client, headers) -> None:
    response = client.post(COMPRESS_PATH, json={"text": TEXT}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"


def test_no_token_configured_means_open(compressor) -> None:
    response = TestClient(playground_app(compressor, token=None)).post(
        COMPRESS_PATH, json={"text": TEXT})
    assert response.status_code == 200


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"rate": 0.5}', "'text' must be a string"),
    (b'{"text": "a b", "rate": "half"}', "'rate' must be a number"),
    (b'{"text": "a b", "rate": 0}', "rate"),
    (b'{"text": "a b", "rate": 0.5, "target_token": 3}', "not both"),
    (b'{"text": "a b", "target_token": 1.5}', "integer"),
    (b'{"text": "a b", "question": 3}', "'question' must be a string"),
    (b'{"text": "a b", "structure": "yaml"}', "'structure' must be one of"),
    (b'{"text": "a b", "speed": 3}', "unknown field(s): speed"),
    (b'{"text": "   "}', "empty"),
])
def test_bad_input_is_400_json(client, body, message) -> None:
    response = client.post(COMPRESS_PATH, content=body, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["code"] == 400


def test_structure_mode_reaches_the_compressor(client) -> None:
    body = {"text": '{"note": "a long and rather wordy note about the weather", "n": 1}',
            "rate": 0.3, "structure": "json"}
    data = client.post(COMPRESS_PATH, json=body, headers=AUTH).json()
    assert json.loads(data["compressed_prompt"])["n"] == 1
    assert client.post(COMPRESS_PATH, json={**body, "structure": "text"},
                       headers=AUTH).status_code == 200


def test_oversized_body_is_413(client) -> None:
    response = client.post(COMPRESS_PATH, content=b"x" * (MAX_BODY_BYTES + 1), headers=AUTH)
    assert response.status_code == 413 and response.json()["error"]["type"] == "too_large"


def test_playground_command_serves_the_page_and_the_token_protected_endpoint(tmp_path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PLAYGROUND_TOKEN": "t0k"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_lingua.cli", "playground", "--port", str(port),
         "--token-env", "PLAYGROUND_TOKEN", "--threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as response:
                    assert b"edge-lingua playground" in response.read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)

        def post(token: str) -> tuple[int, dict]:
            request = urllib.request.Request(
                base + COMPRESS_PATH, data=json.dumps({"text": TEXT}).encode(), method="POST",
                headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, json.load(exc)

        assert post("nope")[0] == 401
        status, data = post("t0k")
        assert status == 200 and data["compressed_tokens"] < data["origin_tokens"]
    finally:
        proc.terminate()
        proc.wait(10)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["text", "rate", "question",
                                                        "target_token", "x"]), inner,
                                       max_size=4), max_leaves=8)


@given(body=st.one_of(_json.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40)))
def test_any_body_parses_or_is_a_bad_request(body: bytes) -> None:
    try:
        request = parse_request(body)
    except BadRequest:
        return
    assert isinstance(request.text, str)
    assert (request.rate is None) != (request.target_token is None)
