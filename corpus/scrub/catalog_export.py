"""Export the provider rule catalog that Kingfisher ships (Betterleaks' rules, the maintained
successor of gitleaks' rule file, plus OSV-Scalibr's Veles rules) into the compact JSON file
that corpus loads (`corpus/scrub/provider_rules.json`).

Loading the catalog through `kingfisher_sdk` compiles its Vectorscan databases (about 5 s per
process), so the rules are exported once, with the package version they came from, and read
as data; tests/test_scrub_catalog.py checks the file against the installed package.

    .venv/bin/python -m corpus.scrub.catalog_export   # rewrites provider_rules.json
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("provider_rules.json")
PACKAGE = "kingfisher-secret-scanner"


def _flatten_or(node: dict[str, Any]) -> list[dict[str, Any]]:
    if node.get("kind") == "binary" and node.get("operator") == "||":
        return _flatten_or(node["left"]) + _flatten_or(node["right"])
    return [node]


def _is_secret(node: dict[str, Any]) -> bool:
    return (node.get("kind") == "member" and node["node"].get("value") == "finding"
            and node["property"].get("value") == "secret")


def _strings(node: dict[str, Any]) -> list[str] | None:
    if node.get("kind") != "array":
        return None
    values = [n.get("value") for n in node["nodes"]]
    return values if all(isinstance(v, str) for v in values) else None


def _term(node: dict[str, Any]) -> list[Any] | None:
    """One drop condition of a rule's filter that depends on the secret alone, or None (a
    condition on the path, the line or captures is not applied: recall first)."""
    negate = node.get("kind") == "unary" and node.get("operator") == "!"
    inner = node.get("node", node.get("operand")) if negate else node
    if not isinstance(inner, dict):
        return None
    if inner.get("kind") == "call" and inner["callee"].get("value") in ("matchesAny",
                                                                        "containsAny"):
        args = inner["arguments"]
        if len(args) == 2 and _is_secret(args[0]) and (values := _strings(args[1])):
            name = "matches" if inner["callee"]["value"] == "matchesAny" else "contains"
            return [("not_" if negate else "") + name, values]
        return None
    if negate or inner.get("kind") != "binary" or inner["operator"] not in ("<", "<="):
        return None
    left, right = inner["left"], inner["right"]
    if (left.get("kind") == "call" and left["callee"].get("value") == "entropy"
            and len(left["arguments"]) == 1 and _is_secret(left["arguments"][0])
            and right.get("kind") == "float"):
        return ["entropy" + inner["operator"], float(right["value"])]
    return None


def export() -> dict[str, Any]:
    import kingfisher_sdk

    rules = kingfisher_sdk.Rules(confidence="low", cache=False)
    lists: dict[str, int] = {}
    out = []
    for meta in rules.metadata():
        if not meta["visible"]:  # helpers of other rules (client ids, hosts): not secrets
            continue
        d = rules.detail(meta["id"])
        terms = []
        for node in _flatten_or(d["betterleaks_filter"] or {}):
            if (t := _term(node)) is not None:
                key = json.dumps(t[1]) if isinstance(t[1], list) else None
                if key is not None:
                    t[1] = lists.setdefault(key, len(lists))
                terms.append(t)
        out.append({"id": d["id"], "pattern": d["pattern"],
                    "group": d["betterleaks_secret_group"], "path": d["path"],
                    "drop_if": terms, "needs_other_rule": any(
                        not dep["optional"] for dep in d["depends_on_rule"] or [])})
    return {"source": f"{PACKAGE} {metadata.version(PACKAGE)}: Betterleaks and Veles rules "
                      "(MIT / Apache-2.0), exported by corpus/scrub/catalog_export.py",
            "lists": [json.loads(k) for k in lists], "rules": out}


def main() -> None:
    OUT.write_text(json.dumps(export(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT.name}")


if __name__ == "__main__":
    main()
