"""BigQuery Standard SQL to DuckDB with sqlglot: parameters bound as literals, GitHub tables
(`bigquery-public-data.github_repos.files`, ...) mapped to local views of the same name."""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from corpus.errors import ConfigError
from corpus.schema import GITHUB_TABLES


def parse(sql: str, where: str) -> exp.Expression:
    """One SELECT statement in BigQuery dialect; ConfigError with sqlglot's message otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except sqlglot.errors.ParseError as e:
        first = e.errors[0] if e.errors else {}
        at = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise ConfigError(f"query {where} does not parse as BigQuery SQL{at}: "
                          f"{first.get('description', str(e))}") from e
    if len(statements) != 1:
        raise ConfigError(f"query {where}: expected one statement, found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise ConfigError(f"query {where}: only SELECT queries can be extracted, "
                          f"found {tree.key.upper()}")
    return tree


def _ctes(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def tables(tree: exp.Expression, where: str) -> set[str]:
    """GitHub table names the query reads; ConfigError for any other table."""
    ctes = _ctes(tree)
    names = set()
    for t in tree.find_all(exp.Table):
        if not t.name or (t.name in ctes and not t.db):
            continue
        if t.name not in GITHUB_TABLES or (t.db and t.db != "github_repos"):
            full = ".".join(p for p in (t.catalog, t.db, t.name) if p)
            raise ConfigError(f"query {where} reads table {full}; locally only "
                              f"github_repos.{{{', '.join(GITHUB_TABLES)}}} exist")
        names.add(t.name)
    return names


def parameters(tree: exp.Expression) -> set[str]:
    return {p.name for p in tree.find_all(exp.Parameter)}


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, list):
        return exp.Array(expressions=[_literal(v) for v in value])
    raise TypeError(f"cannot bind {value!r}")


def to_duckdb(tree: exp.Expression, values: dict[str, Any], where: str) -> str:
    """DuckDB SQL with every @parameter replaced by its literal value."""
    missing = parameters(tree) - set(values)
    if missing:
        raise ConfigError(f"query {where} uses {', '.join('@' + m for m in sorted(missing))} "
                          "without declaring it ('-- @param NAME TYPE' in its header)")
    ctes = _ctes(tree)

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Parameter):
            return _literal(values[node.name])
        if isinstance(node, exp.Table) and node.name in GITHUB_TABLES \
                and not (node.name in ctes and not node.db):
            return exp.Table(this=exp.to_identifier(node.name), alias=node.args.get("alias"))
        return node

    return tree.copy().transform(rewrite).sql(dialect="duckdb", pretty=True)
