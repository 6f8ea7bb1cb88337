"""Tables and text lines print what users named (API keys, agents, organisations) as text:
a newline, a carriage return or a terminal escape in a name is shown escaped, never obeyed, so
no name can draw a row of its own or repaint the screen."""

from __future__ import annotations

import click
from click.testing import CliRunner
from pasar_core.printable import printable

from pasar.cli_support import emit, table

HOSTILE = "ci\npsr_spoofed  active  root@example.com\r\x1b[2J\x1b]8;;http://x\x07\u202e\u2028\u2029"


@click.command()
def listing() -> None:
    table(("ID", "NAME"), [("k1", HOSTILE), ("k2", "plain")], empty="none")
    emit(False, None, f"revoked {HOSTILE}")


def test_control_and_format_characters_are_escaped_in_tables_and_lines() -> None:
    result = CliRunner().invoke(listing, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4  # the header, two rows, one line: the name drew no row of its own
    assert lines[0].split() == ["ID", "NAME"]
    assert lines[1].startswith("k1  ci\\npsr_spoofed")
    assert lines[2].split() == ["k2", "plain"]
    assert lines[3].startswith("revoked ci\\n")
    for line in lines:
        assert line.isprintable(), line
    for escaped in ("\\x1b[2J", "\\u202e", "\\u2028\\u2029"):
        assert escaped in lines[1]


def test_printable_keeps_ordinary_text() -> None:
    assert printable("Zoë's agent — día 1 (日本)") == "Zoë's agent — día 1 (日本)"
    assert printable("a\tb") == "a\\tb"
