"""The admin against a real Daphne: the cancel action stops a really running
`bench` task (its live stream ends with task_cancelled, done), and a Playwright
screenshot of a real conversation's timeline (tests/artifacts/admin_timeline.png)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.chromium import CHROMIUM_ARGS, chromium_executable
from tests.live import LiveServer
from tests.sse import SseParser

pytestmark = pytest.mark.e2e

ADMIN = {"username": "root", "password": "admin-pw-7f3c9e21", "email": "root@example.test"}
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(
        env={
            "DJANGO_SUPERUSER_USERNAME": ADMIN["username"],
            "DJANGO_SUPERUSER_PASSWORD": ADMIN["password"],
            "DJANGO_SUPERUSER_EMAIL": ADMIN["email"],
        }
    ).start()
    try:
        live.manage("createsuperuser", "--noinput")
        yield live
    finally:
        live.close()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    with httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=headers) as client:
        yield client


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    """An httpx client logged into /admin/ as the superuser."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        form = client.get("/admin/login/", params={"next": "/admin/"})
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": csrf_token(form.text),
                "username": ADMIN["username"],
                "password": ADMIN["password"],
                "next": "/admin/",
            },
        )
        assert response.status_code == 302 and response.headers["location"] == "/admin/", response.text[:500]
        yield client


def admin_action(admin: httpx.Client, action: str, task_id: str) -> str:
    """Post a task changelist action as a browser does; the page it lands on (with its messages)."""
    page = admin.get("/admin/conversations/task/")
    response = admin.post(
        "/admin/conversations/task/",
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "action": action,
            "_selected_action": task_id,
            "index": "0",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response.text


def test_cancel_action_cancels_a_really_running_bench_task(api, admin):
    events: list[dict] = []
    action_page = ""
    with api.stream("POST", "/agents/stream", json={"query": "k=2000 delay_ms=5", "agent_name": "bench"}) as stream:
        assert stream.status_code == 200
        parser = SseParser()
        for text in stream.iter_text():
            for event in parser.feed(text):
                events.append(event.json)
                chunks = sum(1 for e in events if e["event"] == "message_chunk")
                if chunks == 5 and not action_page:
                    # The run is streaming: cancel its task from the admin, mid-stream.
                    task_id = next(e for e in events if e["event"] == "task_started")["data"]["task_id"]
                    action_page = admin_action(admin, "cancel_running_tasks", task_id)
    names = [e["event"] for e in events]
    assert "Asked 1 running task(s) to cancel" in action_page
    assert names[-2:] == ["task_cancelled", "done"]
    assert 5 <= names.count("message_chunk") < 2000
    cancelled = events[-2]["data"]
    assert cancelled["task_id"] == task_id and cancelled["payload"]["content"] == "Cancelled by an operator."

    conversation_id = events[0]["data"]["conversation_id"]
    detail = api.get(f"/conversations/{conversation_id}").json()
    assert [(t["id"], t["status"]) for t in detail["tasks"]] == [(task_id, "cancelled")]
    assert detail["conversation"]["status"] == "idle"

    # Once finished, the same action refuses the task with a message.
    again = admin_action(admin, "cancel_running_tasks", task_id)
    assert "Not cancelled, already finished" in again and f"{task_id} (cancelled)" in again
    assert "Asked" not in again


def chromium_or_skip() -> str:
    return chromium_executable()


def screenshot_timeline(executable: str, base_url: str, conversation_id: str, shot: Path) -> None:
    """Log in as the superuser, open the conversation page, expand a folded row, screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{base_url}/admin/login/?next=/admin/")
            page.fill("#id_username", ADMIN["username"])
            page.fill("#id_password", ADMIN["password"])
            page.click("input[type=submit]")
            page.wait_for_url(f"{base_url}/admin/")
            page.goto(f"{base_url}/admin/conversations/conversation/{conversation_id}/change/")
            timeline = page.locator("#timeline")
            timeline.wait_for()
            folded = timeline.locator("tr.folded")
            assert folded.count() >= 2  # the reasoning block and the summary paragraph
            # Expand the reasoning block: its raw events appear.
            first = folded.first.locator("details")
            first.locator("summary").click()
            assert first.locator("table.raw tr").count() >= 3
            assert page.locator("a.viewsitelink").get_attribute("href") == f"/?conversation={conversation_id}"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()


@pytest.mark.browser
def test_timeline_page_screenshot(server, api):
    executable = chromium_or_skip()

    with api.stream("POST", "/agents/stream", json={"query": "How did NVDA and AAPL do this year?"}) as stream:
        assert stream.status_code == 200
        parser = SseParser()
        events = [e.json for text in stream.iter_text() for e in parser.feed(text)]
    assert events[-1]["event"] == "done"
    conversation_id = events[0]["data"]["conversation_id"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "admin_timeline.png"
    # Its own thread: a sync Playwright already open in this process (another
    # module's session browser) keeps an event loop running on the main thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(screenshot_timeline, executable, server.url, conversation_id, shot).result(timeout=180)
    assert shot.stat().st_size > 10_000
