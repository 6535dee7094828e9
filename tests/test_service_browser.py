"""The shopper page in a real browser: uvicorn on 127.0.0.1, Debian's chromium driven by Playwright. Upload a
photo, see the guidance, choose a garment, get a result, rate it; the screenshot is kept in test-artifacts/.
Hostile strings (a garment's name, a rating's reason) are shown as text on both pages and never run."""

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from fitroom.demo import sample_path
from fitroom.engines import create_engine
from fitroom.service.app import create_app
from fitroom.service.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


#: strings that run script if a page ever builds markup from them
#: (names may not hold angle brackets, so the name breaks out of an attribute instead)
HOSTILE_NAME = 'x" src="x" onerror="window.__pwned=1;alert(document.domain)" data-x="'
HOSTILE_REASON = "<img src=x onerror=\"window.__pwned=2;alert('reason')\"><script>window.__pwned=3</script>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(settings: Settings, preprocessor):
    app = create_app(settings, engine=create_engine("warp"), preprocessor=preprocessor)
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    assert instance.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(30)


@pytest.fixture
def server(tmp_path, preprocessor):
    with _serve(Settings(data_dir=tmp_path / "data", admin_token="secret", api_key="shop-key"), preprocessor) as url:
        yield url


def _chromium(playwright):
    assert Path(CHROMIUM).is_file() or shutil.which("chromium"), (
        "the browser test needs Debian's chromium (apt-get install -y chromium); scripts/test installs it")
    return playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).is_file()
                                      else shutil.which("chromium"), headless=True, args=FLAGS)


def test_shopper_page_end_to_end(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    import httpx

    with open(sample_path("garment_tee_front.jpg"), "rb") as front:
        created = httpx.post(f"{server}/v1/garments", files={"front": ("tee.jpg", front, "image/jpeg")},
                             data={"name": HOSTILE_NAME, "category": "upper"},
                             headers={"Authorization": "Bearer shop-key"}, timeout=60)
    assert created.status_code == 201, created.text
    page_response = httpx.get(server)
    assert "script-src 'sha256-" in page_response.headers["content-security-policy"]
    ARTIFACTS.mkdir(exist_ok=True)
    ran: list[str] = []
    with sync_playwright() as playwright:
        browser = _chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.on("dialog", lambda dialog: (ran.append(dialog.message), dialog.dismiss()))
            page.goto(server)
            page.set_input_files("#photo", str(sample_path("person_front.jpg")))
            expect(page.locator("#verdict")).not_to_have_text("checking...", timeout=60_000)
            expect(page.locator("#verdict")).to_have_text(
                __import__("re").compile("looks good|usable, with warnings|will not work well"))
            page.locator(".garment").first.click()
            page.click("#try")
            expect(page.locator("#status")).to_have_text("done", timeout=120_000)
            expect(page.locator("#result")).to_be_visible()
            page.wait_for_function("document.getElementById('result').naturalWidth > 0")
            # the hostile name is the garment's text, not markup: no element was injected and no script ran
            assert page.locator(".garment img").first.get_attribute("alt") == HOSTILE_NAME
            assert page.locator("#garments img").count() == 1
            page.fill("#reason", HOSTILE_REASON)
            page.click("#good")
            expect(page.locator("#thanks")).to_contain_text("saved")
            page.screenshot(path=str(ARTIFACTS / "shopper_page.png"), full_page=True)
            # the admin page shows the shopper's reason as text
            page.goto(f"{server}/admin")
            page.fill("#token", "secret")
            page.click("#load")
            expect(page.locator("#rated figcaption").first).to_contain_text(HOSTILE_REASON)
            assert page.locator("#rated img").count() == 1
            assert page.evaluate("window.__pwned") is None and not ran, ran
        finally:
            browser.close()
    stats = httpx.get(f"{server}/v1/stats", headers={"Authorization": "Bearer shop-key"}).json()
    assert stats["ratings"] == 1 and stats["success_rate"] == 1.0
    assert (ARTIFACTS / "shopper_page.png").stat().st_size > 10_000


def test_a_garment_linked_from_a_shop_page_under_a_sub_path(tmp_path, preprocessor):
    """`/?garment=ID` chooses that garment; under a path prefix every request of the page keeps the prefix."""
    from playwright.sync_api import expect, sync_playwright
    import httpx

    settings = Settings(data_dir=tmp_path / "data", api_key="shop-key", root_path="/shop/fitroom")
    with _serve(settings, preprocessor) as server, sync_playwright() as playwright:
        ids = []
        for name in ("tee", "long sleeve"):
            photo = "garment_tee_front.jpg" if name == "tee" else "garment_long_sleeve_front.jpg"
            with open(sample_path(photo), "rb") as front:
                created = httpx.post(f"{server}/shop/fitroom/v1/garments", data={"name": name, "category": "upper"},
                                     files={"front": (photo, front, "image/jpeg")},
                                     headers={"Authorization": "Bearer shop-key"}, timeout=60)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        browser = _chromium(playwright)
        try:
            page = browser.new_page()
            failed: list[str] = []
            page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
            page.goto(f"{server}/shop/fitroom/?garment={ids[1]}")
            expect(page.locator(".garment")).to_have_count(2)
            expect(page.locator(f'.garment[data-id="{ids[1]}"]')).to_have_class("garment chosen")
            expect(page.locator(f'.garment[data-id="{ids[0]}"]')).to_have_class("garment")
            page.wait_for_function("[...document.querySelectorAll('.garment img')].every(i => i.naturalWidth > 0)")
            assert not failed, failed
        finally:
            browser.close()
