"""The `srgan serve` page end to end in headless Chromium (issue 11): a real uvicorn server on a free
port, Set5's baby uploaded through the file picker, the result checked, the before/after slider dragged
and moved with the keyboard, the synced zoom at 100%, a download, a phone-sized window, and the
offline API docs; nothing may be fetched from anywhere but the server.

Needs Debian's `chromium` (apt-get install chromium; Playwright's own browser download cannot work
offline) and the `playwright` package; skipped with the reason where either is missing. The screenshot
goes to a temporary folder; `SRGAN_SERVE_SCREENSHOT=docs/images/serve.png` writes the README's one
instead, made with the shipped model so that it shows real super-resolution.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

import uvicorn

from srgan.serve import ServeSettings, create_app
from srgan.serve.server import bind, url_of

SCREENSHOT = os.environ.get("SRGAN_SERVE_SCREENSHOT")


@pytest.fixture(scope="module")
def server(tiny_weights):
    """A real uvicorn server on a free port, in a thread, stopped after the module's tests."""
    sock = bind("127.0.0.1", 0)
    # the screenshot is made with the shipped model, to show real super-resolution
    app = create_app(ServeSettings(model=None if SCREENSHOT else tiny_weights, port=sock.getsockname()[1]))
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < end and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield url_of(sock)
    instance.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _offline_page(browser, url: str, **context):
    """A page whose every request to anywhere but `url` (and blob:/data: URLs) is refused and recorded."""
    page = browser.new_page(**context)
    page.outside = []

    def route(request_route):
        target = request_route.request.url
        if target.startswith((url, "blob:", "data:")):
            request_route.continue_()
        else:
            page.outside.append(target)
            request_route.abort()

    page.route("**/*", route)
    return page


def test_page_upscales_compares_and_downloads(server, browser, shared, tmp_path):
    page = _offline_page(browser, server, viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.goto(server)
    sync_api.expect(page.locator("#limits")).to_contain_text("pixels per image")
    assert page.locator("#model option").count() >= 1

    page.set_input_files("#file", str(shared / "datasets" / "Set5" / "baby.png"))
    item = page.locator("#results li").first
    sync_api.expect(item).to_have_attribute("data-status", "done", timeout=60_000)
    sync_api.expect(item.locator(".status")).to_contain_text("512×512 → 2048×2048")
    assert page.evaluate("[document.querySelector('#after').naturalWidth, "
                         "document.querySelector('#after').naturalHeight]") == [2048, 2048]

    # drag the slider a quarter of the way across the image (all of it in view): the input shows left of it only
    handle, image = page.locator("#handle"), page.locator("#canvas")
    sync_api.expect(handle).to_have_attribute("aria-valuenow", "50")
    box, view = handle.bounding_box(), image.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(view["x"] + view["width"] / 4, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    assert abs(int(handle.get_attribute("aria-valuenow")) - 25) <= 1
    shown = page.evaluate("""(() => { const b = document.querySelector('#before');
        const right = parseFloat(getComputedStyle(b).clipPath.split(' ')[1]);
        return (b.offsetWidth - right) / b.offsetWidth; })()""")
    assert abs(shown - 0.25) < 0.02

    # the keyboard moves it too
    handle.focus()
    page.keyboard.press("ArrowRight")
    sync_api.expect(handle).to_have_attribute("aria-valuenow", "26")
    page.keyboard.press("End")
    sync_api.expect(handle).to_have_attribute("aria-valuenow", "100")
    for key in ["Home"] + ["PageUp"] * 5:
        page.keyboard.press(key)
    sync_api.expect(handle).to_have_attribute("aria-valuenow", "50")

    # zoom 100%: one output pixel per screen pixel, both sides nearest-neighbour, scrolled together
    page.select_option("#zoom", "1")
    assert page.evaluate("document.querySelector('#canvas').offsetWidth") == 2048
    assert page.evaluate("getComputedStyle(document.querySelector('#before')).imageRendering") == "pixelated"
    assert page.evaluate("getComputedStyle(document.querySelector('#after')).imageRendering") == "pixelated"

    with page.expect_download() as download:
        item.locator("[data-act=download]").click()
    assert download.value.suggested_filename == "baby_x4.png"

    target = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "serve.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000

    # a phone-sized window: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.select_option("#zoom", "fit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.outside == []
    page.close()


def test_docs_work_offline(server, browser):
    page = _offline_page(browser, server)
    page.goto(f"{server}/docs")
    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("srgan", timeout=20_000)
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert page.outside == []
    page.close()
