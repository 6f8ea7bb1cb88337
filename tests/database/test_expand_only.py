"""The expand-only rule of docs/deploy.md ("Expand, then contract"), checked on the migrations'
source: from `EXPAND_ONLY_FROM` on, a migration's upgrade drops, renames, retypes nothing and
adds no NOT NULL column without a default to an existing table, unless the migration declares
itself a contract step (module-level `CONTRACT = True`) and docs/deploy.md names it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from pasar_core.storage.migrate import alembic_config

EXPAND_ONLY_FROM = "0019_partitions"
"""The first revision the rule binds (the release that documented it); earlier ones predate
any release that could run beside them."""
DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
DROPS = {"drop_table", "drop_column", "rename_table"}
CONTRACT_SQL = re.compile(
    r"\bDROP\s+(TABLE|COLUMN)\b|\bRENAME\b|\bALTER\s+COLUMN\b[^;]*\b(TYPE|SET\s+NOT\s+NULL)\b"
    r"|\bADD\s+COLUMN\b(?![^;]*\bDEFAULT\b)[^;]*\bNOT\s+NULL\b",
    re.IGNORECASE | re.DOTALL,
)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _sql_text(node: ast.expr) -> str:
    """The literal text of a SQL argument (an f-string's fixed parts; `{}` for the rest)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_sql_text(v) if not isinstance(v, ast.FormattedValue) else "{}"
                       for v in node.values)  # fmt: skip
    if isinstance(node, ast.BinOp):
        return _sql_text(node.left) + _sql_text(node.right)
    return ""


def contract_operations(source: str) -> list[str]:
    """What the upgrade path of a migration does that the previous release cannot run beside
    (everything but `downgrade` is read: helpers called by `upgrade` included)."""
    module = ast.parse(source)
    body = [n for n in module.body if not (isinstance(n, ast.FunctionDef)
                                           and n.name == "downgrade")]  # fmt: skip
    created: set[str] = set()
    calls: list[ast.Call] = []
    for node in body:
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                calls.append(call)
                if call.func.attr == "create_table" and call.args:
                    created.add(_sql_text(call.args[0]))
    found: list[str] = []
    for call in calls:
        name = call.func.attr  # type: ignore[attr-defined]
        line = f"line {call.lineno}: op.{name}"
        if name in DROPS:
            found.append(line)
        elif name == "alter_column":
            if _keyword(call, "new_column_name") or _keyword(call, "type_"):
                found.append(f"{line} (rename or type change)")
            elif _is_false(_keyword(call, "nullable")):
                found.append(f"{line} (NOT NULL)")
        elif name == "add_column" and len(call.args) >= 2:
            table, column = _sql_text(call.args[0]), call.args[1]
            if (
                isinstance(column, ast.Call)
                and _is_false(_keyword(column, "nullable"))
                and _keyword(column, "server_default") is None
                and table not in created
            ):
                found.append(f"{line} (NOT NULL without a default)")  # fmt: skip
        elif (
            name in ("execute", "text")
            and call.args
            and (match := CONTRACT_SQL.search(_sql_text(call.args[0])))
        ):
            found.append(f"{line} ({' '.join(match[0].split()).upper()})")
    return found


def declares_contract(source: str) -> bool:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CONTRACT" for t in node.targets
        ):
            return isinstance(node.value, ast.Constant) and node.value.value is True
    return False


def bound_migrations() -> list[tuple[str, Path]]:
    """(revision, file) from `EXPAND_ONLY_FROM` to the head, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config(""))
    found: list[tuple[str, Path]] = []
    for script in scripts.walk_revisions("base", "heads"):  # newest first
        found.append((script.revision, Path(script.path)))
        if script.revision == EXPAND_ONLY_FROM:
            return found[::-1]
    raise AssertionError(f"{EXPAND_ONLY_FROM} is not in the migrations")


@pytest.mark.parametrize(("revision", "path"), bound_migrations(),
                         ids=[revision for revision, _ in bound_migrations()])  # fmt: skip
def test_each_migration_expands_only_or_is_a_documented_contract_step(
    revision: str, path: Path
) -> None:
    source = path.read_text()
    operations = contract_operations(source)
    if declares_contract(source):
        assert operations, f"{revision} declares CONTRACT but contracts nothing"
        assert f"`{revision}`" in DEPLOY_DOC.read_text(), (
            f"{revision} is a contract step: docs/deploy.md must say how to upgrade past it"
        )
        return
    assert operations == [], (
        f"{revision} contracts the schema ({operations}): split it (expand now, contract in a "
        "later release) or declare CONTRACT = True and document it in docs/deploy.md"
    )


@pytest.mark.parametrize(
    "body",
    [
        "op.drop_column('agents', 'name')",
        "op.drop_table('agents')",
        "op.rename_table('agents', 'bots')",
        "op.alter_column('agents', 'name', new_column_name='title')",
        "op.alter_column('agents', 'name', type_=sa.Text())",
        "op.alter_column('agents', 'name', nullable=False)",
        "op.add_column('agents', sa.Column('x', sa.Text(), nullable=False))",
        "op.execute('ALTER TABLE agents DROP COLUMN name')",
        "op.execute(f'ALTER TABLE {t} RENAME TO old')",
        "op.execute('ALTER TABLE agents ALTER COLUMN name TYPE text')",
        "op.execute('ALTER TABLE agents ALTER COLUMN name SET NOT NULL')",
        "op.execute('ALTER TABLE agents ADD COLUMN x text NOT NULL')",
    ],
)
def test_the_check_catches_each_contract_operation(body: str) -> None:
    source = f"def upgrade() -> None:\n    {body}\n\ndef downgrade() -> None:\n    pass\n"
    assert contract_operations(source), body


@pytest.mark.parametrize(
    "body",
    [
        "op.add_column('agents', sa.Column('x', sa.Text(), nullable=True))",
        "op.add_column('agents', sa.Column('x', sa.Text(), nullable=False, server_default=''))",
        "op.create_table('t', sa.Column('x', sa.Text(), nullable=False))",
        "op.create_index('ix', 'agents', ['name'])",
        "op.execute('ALTER TABLE agents ADD COLUMN x text NOT NULL DEFAULT 0')",
    ],
)
def test_expand_operations_pass_and_downgrades_are_not_read(body: str) -> None:
    source = (f"def upgrade() -> None:\n    {body}\n\n"
              "def downgrade() -> None:\n    op.drop_table('t')\n")  # fmt: skip
    assert contract_operations(source) == []
    assert not declares_contract("CONTRACT = False\n")
    assert declares_contract("CONTRACT = True\n")
