"""The docs name what the code does: every error code is documented."""

from __future__ import annotations

from pathlib import Path

from streaming.errors import HTTP_STATUS, ErrorCode

ROOT = Path(__file__).resolve().parents[2]


def test_every_error_code_has_a_status_and_is_in_the_protocol_doc():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    assert set(HTTP_STATUS) == set(ErrorCode)
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in protocol]
    assert not missing, f"docs/protocol.md does not mention: {missing}"
