"""The search page (raysearch/serve/ui/, served at /ui) in a real browser: headless Chromium
(Debian's package) driven by Playwright for Python, against the session's service. What the
page shows must be what the API answers: the hits of a query (ids in order), the total once a
facet bucket is clicked, the next page by search_after, a hit's stored document. Screenshots
go to docs/screenshots/ (desktop 1280x800, phone 390x844).

Needs the Python package playwright (the `test` extra) and the Debian package chromium
(scripts/install_browser.sh); never `playwright install`. Without them the test skips, unless
CI is set: then it fails."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import debian_docs, wait_operation

INDEX = "ui-debian"
QUERY = "library"
FIELDS = {"section": {"type": "keyword"}, "installed_size": {"type": "integer"}, "essential": {"type": "boolean"}}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT_S = 20


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser test must run (scripts/install_browser.sh)")
    pytest.skip(reason)


def _chromium() -> str:
    """The path of Debian's chromium, once Playwright is known to be importable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the Python package playwright is not installed (pip install -e '.[test]')")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _missing("the Debian package chromium is not installed (bash scripts/install_browser.sh)")
    return path


def _search(http, body: dict) -> dict:
    r = http.post(f"/indexes/{INDEX}/search", json=body)
    assert r.status_code == 200, (body, r.text)
    return r.json()


def _until(what: str, probe, expected, timeout_s: float = WAIT_S):
    """Poll probe() until it returns `expected`; fail naming what was last seen."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = probe()
        if seen == expected:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{what}: the page shows {seen!r}, the API answers {expected!r}")


def test_the_root_sends_browsers_to_the_page_and_the_page_is_served(http):
    page = http.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    for asset, kind in (("ui/app.js", "text/javascript"), ("ui/style.css", "text/css")):
        assert f'"{asset}"' in html
        r = http.get("/" + asset)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), r.text
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    browser = http.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, follow_redirects=False)
    assert browser.status_code == 307 and browser.headers["location"].endswith("/ui"), browser.text
    other = http.get("/")
    assert other.status_code == 404 and other.json() == {"error": {"type": "not_found", "reason": "no such route"}}
    missing = http.get("/ui/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


@pytest.fixture(scope="module")
def debian_index(http) -> dict:
    """The index the page is tried on: 300 Debian packages, section, installed_size and
    essential declared; the bulk operation that filled it."""
    docs = debian_docs(0, 300)
    http.delete(f"/indexes/{INDEX}")
    r = http.put(f"/indexes/{INDEX}", json={"shards": 2, "fields": FIELDS})
    assert r.status_code == 201, r.text
    r = http.post(f"/bulk-indexing/{INDEX}", json=docs)
    assert r.status_code == 202, r.text
    op = wait_operation(http, r.json()["operation_id"], timeout_s=120)
    assert op["status"] == "completed" and op["documents"]["indexed"] == len(docs), op
    return op


def _browser_and_index(request) -> tuple[str, object, object, dict]:
    """Chromium's path (or skip / fail), then the service: nothing starts when the browser is missing."""
    chromium = _chromium()
    service, http = request.getfixturevalue("service"), request.getfixturevalue("http")
    return chromium, service, http, request.getfixturevalue("debian_index")


def test_the_search_page_shows_what_the_api_answers(request):
    chromium, service, http, op = _browser_and_index(request)
    from playwright.sync_api import sync_playwright

    started = time.monotonic()

    # What the page asks for: the query, highlight, sort made explicit (so hits carry sort values).
    first = _search(http, {"q": QUERY, "size": 10, "highlight": True, "sort": ["_score"],
                           "facets": {"s": {"terms": {"field": "section", "size": 10}}}})
    assert first["total"] > 10, first["total"]
    bucket = first["facets"]["s"]["buckets"][0]
    filtered = _search(http, {"q": QUERY, "size": 10, "sort": ["_score"], "filter": {"term": {"section": bucket["key"]}}})
    assert bucket["count"] == filtered["total"] > 10, (bucket, filtered["total"])
    second = _search(http, {"q": QUERY, "size": 10, "sort": ["_score"], "filter": {"term": {"section": bucket["key"]}},
                            "search_after": filtered["hits"][-1]["sort"]})
    assert second["hits"]
    stored = http.get(f"/indexes/{INDEX}/documents/{second['hits'][0]['id']}").json()["document"]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda req: None if req.url.startswith(service.url) else outside.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.set_default_timeout(WAIT_S * 1000)

            def shown_ids():
                return page.eval_on_selector_all("#hits > li", "items => items.map(i => i.dataset.id)")

            def shown_total():
                return page.get_attribute("#result-count", "data-total")

            page.goto(service.url + "/")  # a browser's Accept: the root redirects to the page
            assert page.url.endswith("/ui"), page.url
            page.wait_for_selector(f'#index-select option[value="{INDEX}"]', state="attached")
            label = page.eval_on_selector(f'#index-select option[value="{INDEX}"]', "o => o.textContent")
            assert label == f"{INDEX} (300 documents)", label
            page.select_option("#index-select", INDEX)
            page.wait_for_selector('.bucket[data-field="section"]')
            assert page.is_visible('fieldset.range[data-field="installed_size"]')

            page.locator("#q").press_sequentially(QUERY, delay=40)  # results as you type, debounced
            _until("ids of the first page", shown_ids, [h["id"] for h in first["hits"]])
            _until("total", shown_total, str(first["total"]))
            assert page.locator("#hits mark").count() > 0  # highlighted matches, as <mark> elements
            assert "<em>" not in page.inner_html("#hits")
            assert page.get_attribute("#result-count", "aria-live") == "polite"
            assert str(first["total"]) in page.inner_text("#result-count")

            page.click(f'.bucket[data-field="section"][data-value="{bucket["key"]}"]')
            _until("total with the facet's filter", shown_total, str(filtered["total"]))
            _until("ids with the facet's filter", shown_ids, [h["id"] for h in filtered["hits"]])
            pressed = page.get_attribute(f'.bucket[data-field="section"][data-value="{bucket["key"]}"]', "aria-pressed")
            assert pressed == "true"

            page.click("#next-page")
            _until("ids of the next page (search_after)", shown_ids, [h["id"] for h in second["hits"]])
            assert page.is_visible("#prev-page")

            hit = page.locator("#hits > li").first
            hit.locator("summary").click()
            pre = hit.locator("pre.stored")
            _until("the stored document", lambda: _json_or_none(pre.inner_text()), stored)

            # The operations panel shows the bulk that filled the index.
            page.wait_for_selector(f'#operations li[data-id="{op["operation_id"]}"]')
            assert "completed" in page.inner_text(f'#operations li[data-id="{op["operation_id"]}"] .status').lower()

            # Keyboard: Tab from the search box reaches the results; the down arrow jumps to them.
            page.focus("#q")
            for _ in range(60):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.tagName") == "SUMMARY":
                    break
            assert page.evaluate("document.activeElement.closest('#hits') !== null"), "Tab never reached a result"
            page.focus("#q")
            page.keyboard.press("ArrowDown")
            assert page.evaluate("document.activeElement.tagName") == "SUMMARY"

            page.screenshot(path=str(SCREENSHOTS / "search-page.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.evaluate("window.scrollTo(0, 0)")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page is {width}px wide at a phone's width"
            facets_box = page.locator("#facet-panel").bounding_box()
            results_box = page.locator("#hits").bounding_box()
            assert facets_box["y"] + facets_box["height"] <= results_box["y"], "the filters stack above the results"
            page.screenshot(path=str(SCREENSHOTS / "search-page-phone.png"))
        finally:
            browser.close()
    assert not outside, f"the page fetched from elsewhere: {outside}"
    assert not errors, f"errors in the page: {errors}"
    print(f"browser test: {time.monotonic() - started:.1f}s")


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_the_page_asks_for_a_key_and_a_search_only_key_is_enough(request):
    """On a service with an API key (a copy deployed beside, under a route prefix): the page and
    its files are public, its API calls are not; it asks for a key, and a key that may only search
    one index searches it, without the operations panel (403) and without a storm of retries."""
    chromium, service, http, _ = _browser_and_index(request)
    import httpx
    from playwright.sync_api import sync_playwright

    from raysearch.serve.app import Ingress
    from tests.integration.helpers import deployed_beside

    settings = service.settings.model_copy(update={"api_key": "ui-admin-s3cret"})
    expected = _search(http, {"q": QUERY, "size": 10, "highlight": True, "sort": ["_score"]})
    with deployed_beside(service, Ingress.bind(settings.model_dump()), "uilocked") as base, \
            httpx.Client(timeout=60) as client:
        assert client.get(base + "/ui").status_code == 200 and client.get(base + "/ui/app.js").status_code == 200
        assert client.get(base + "/ui/nothing.js").status_code == 401  # only the page's own files are open
        assert client.get(base + "/indexes").status_code == 401
        r = client.post(base + "/keys", json={"actions": ["search"], "indexes": [INDEX], "description": "ui test"},
                        headers={"Authorization": "Bearer ui-admin-s3cret"})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        calls, errors = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.on("request", lambda req: calls.append(req.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.set_default_timeout(WAIT_S * 1000)
                page.goto(base + "/ui")
                page.wait_for_selector("#message:not([hidden])")
                assert "needs an API key" in page.inner_text("#message")
                page.fill("#api-key", key)
                page.press("#api-key", "Enter")
                page.wait_for_selector(f'#index-select option[value="{INDEX}"]', state="attached")
                options = page.eval_on_selector_all("#index-select option", "os => os.map(o => o.value)")
                assert options == [INDEX], options  # the key sees its index only
                page.wait_for_selector('.bucket[data-field="section"]')
                page.locator("#q").press_sequentially(QUERY, delay=20)
                _until("ids with a search-only key", lambda: page.eval_on_selector_all(
                    "#hits > li", "items => items.map(i => i.dataset.id)"), [h["id"] for h in expected["hits"]])
                assert page.is_hidden("#message")
                assert page.evaluate("sessionStorage.getItem('raysearch.apiKey')") == key
                hit = page.locator("#hits > li").first
                hit.locator("summary").click()
                _until("a stored document without documents.read", lambda: hit.locator("pre.stored").inner_text(),
                       "This API key may not read stored documents (documents.read).")
                time.sleep(2.5)  # a poll period: nothing retries the refused operations panel
                assert page.is_hidden("#operations-panel")
            finally:
                browser.close()
        operations = [url for url in calls if "/bulk-operations" in url]
        assert len(operations) == 1, operations
        assert all(url.startswith(base + "/") for url in calls), [u for u in calls if not u.startswith(base)]
        assert not errors, errors
