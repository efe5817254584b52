"""The playground page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The test loads the page, compresses a paragraph, checks the DOM against the API's answer and
saves a screenshot to artifacts/playground.png.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("playwright")

from edge_lingua.playground import COMPRESS_PATH, playground_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TOKEN = "pl4yground"
PARAGRAPH = (
    "The Apollo 11 mission landed the first humans on the Moon on July 20, 1969. Neil "
    "Armstrong stepped onto the lunar surface six hours later, and Buzz Aldrin joined him "
    "about twenty minutes after that. They spent roughly two and a quarter hours together "
    "outside the spacecraft and collected 47.5 pounds of lunar material to bring back to Earth."
)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: apt-get install chromium "
                           "(.ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def server(compressor):
    import uvicorn

    config = uvicorn.Config(playground_app(compressor, TOKEN), host="127.0.0.1", port=0,
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture()
def page(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=_chromium(), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1100, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


def _api(base: str, body: dict) -> dict:
    request = urllib.request.Request(
        base + COMPRESS_PATH, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_page_compresses_a_paragraph_and_shows_kept_and_dropped_words(server, page) -> None:
    page.goto(server + "/")
    assert page.title() == "edge-lingua playground"
    page.fill("#text", PARAGRAPH)
    page.fill("#token", TOKEN)
    page.eval_on_selector("#rate", "e => { e.value = '0.4'; "
                                   "e.dispatchEvent(new Event('input')); }")
    assert page.text_content("#rate-value") == "0.40"
    page.click("#compress")
    page.wait_for_selector("#output .word")

    api = _api(server, {"text": PARAGRAPH, "rate": 0.4})
    words = page.eval_on_selector_all("#output .word", """els => els.map(e => ({
        text: e.textContent, kept: e.classList.contains('kept'),
        line: getComputedStyle(e).textDecorationLine,
        background: getComputedStyle(e).backgroundColor}))""")
    assert [w["text"] for w in words] == api["words"]
    assert [w["kept"] for w in words] == api["kept"]
    assert any(api["kept"]) and not all(api["kept"])
    for word in words:
        if word["kept"]:
            assert word["line"] == "none" and word["background"] != "rgba(0, 0, 0, 0)"
        else:
            assert word["line"] == "line-through" and word["background"] == "rgba(0, 0, 0, 0)"
    assert page.text_content("#origin-tokens") == str(api["origin_tokens"])
    assert page.text_content("#compressed-tokens") == str(api["compressed_tokens"])
    assert page.text_content("#saving") == f"{100 * api['saving']:.1f}%"
    assert page.text_content("#latency").endswith(" ms")
    assert page.text_content("#compressed") == api["compressed_prompt"]
    assert page.text_content("#error") == ""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_page_shows_the_servers_error(server, page) -> None:
    page.goto(server + "/")
    page.fill("#text", PARAGRAPH)
    page.fill("#token", "wrong")
    page.click("#compress")
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert page.text_content("#error") == "missing or wrong bearer token"
    assert page.query_selector_all("#output .word") == []
