"""Inline `<think>…</think>` at the start of an answer becomes reasoning, however it is split."""

from __future__ import annotations

import pytest

from streaming.agents.llm.think import ThinkSplitter


def split_all(deltas: list[str]) -> list[tuple[str, str]]:
    splitter = ThinkSplitter()
    pieces = [p for d in deltas for p in splitter.feed(d)] + splitter.finish()
    merged: list[tuple[str, str]] = []
    for kind, text in pieces:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


ANSWER = "\n<think>Two plus two; easy.</think>\n\nIt is 4."


@pytest.mark.parametrize("cut", range(1, len(ANSWER)))
def test_every_split_point_gives_the_same_thought_and_text(cut):
    assert split_all([ANSWER[:cut], ANSWER[cut:]]) == [("reasoning", "Two plus two; easy."), ("text", "It is 4.")]


def test_one_character_at_a_time():
    assert split_all(list(ANSWER)) == [("reasoning", "Two plus two; easy."), ("text", "It is 4.")]


def test_thought_is_released_as_it_streams_not_at_the_end():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>Hmm") == [("reasoning", "Hmm")]
    assert splitter.feed(" ok</th") == [("reasoning", " ok")]  # "</th" may be the closing tag
    assert splitter.feed("ink>Done") == [("text", "Done")]
    assert splitter.feed(" now") == [("text", " now")]


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        (["Plain ", "text"], [("text", "Plain text")]),
        (["<thin", "king is fun"], [("text", "<thinking is fun")]),
        (["The tag <think> later"], [("text", "The tag <think> later")]),
        (["<think>never closed"], [("reasoning", "never closed")]),
        (["<thi"], [("text", "<thi")]),
        (["  "], [("text", "  ")]),
    ],
)
def test_only_a_leading_think_tag_is_reasoning(deltas, expected):
    assert split_all(deltas) == expected
