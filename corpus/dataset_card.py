"""The dataset card (README.md, YAML front matter then Markdown) of every output folder, and
the one writer of cards: stage outputs (written by the engine), token shards, and the Hub card
of `corpus push` / `corpus shard --format parquet` (corpus/publish/card.py adds its metadata).

Its `configs` say which files each config and split reads, so `datasets.load_dataset(DIR)`
gives exactly the documents and `load_dataset(DIR, "removed")` the removed rows; a config is
declared only when the folder has its files (`datasets` refuses a config that matches none),
except `default`, which a reader must never find filled with something else. Token shards
declare only their Arrow splits (`datasets` reads all configs of a folder in one format).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

import yaml

from corpus.units import format_bytes

FILE = "README.md"
DATA_GLOB = "data/*.parquet"
REMOVED_GLOB = "removed/*.parquet"


def configs(manifest: dict[str, Any], files: Iterable[str]) -> list[dict[str, Any]]:
    """The card's `configs` for a finished output: from its manifest (what kind of output)
    and its files (relative paths: which configs have any)."""
    files = list(files)
    out: list[dict[str, Any]] = []
    if manifest.get("tokens"):  # token shards: <split>-NNNNN.arrow. Only they: `datasets`
        # reads every config of a folder with one builder, chosen by the default's files
        return [split_config("default", list(manifest["tokens"].get("splits") or {}),
                             "{}-*.arrow")]
    elif manifest.get("parquet"):  # Hub shards: data/<split>-NNNNN-of-NNNNN.parquet
        out.append(split_config("default", list(manifest["parquet"]["splits"]),
                                 "data/{}-*.parquet"))
    elif manifest.get("tables"):  # GitHub-shaped tables: one config each
        out += [{"config_name": t, "data_files": f"{t}.parquet"}
                for t in manifest["tables"] if f"{t}.parquet" in files]
    else:
        out.append({"config_name": "default", "data_files": DATA_GLOB})
    if any(f.startswith("removed/") and f.endswith(".parquet") for f in files):
        out.append({"config_name": "removed", "data_files": REMOVED_GLOB})
    return out


def split_config(name: str, splits: list[str], pattern: str) -> dict[str, Any]:
    return {"config_name": name,
            "data_files": [{"split": s, "path": pattern.format(s)} for s in splits]}


def render_text(metadata: dict[str, Any], body: list[str]) -> str:
    """The card's text: YAML front matter (PyYAML, so it is valid YAML whatever the values)
    and the Markdown body."""
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n" + "\n".join(body).rstrip("\n") + "\n"


def stage_section(m: dict[str, Any]) -> list[str]:
    """What one stage did: rows in / kept / removed, its config, its removals per reason."""
    cfg = {k: v for k, v in (m.get("config") or {}).items() if v not in (None, [], {}, "")}
    lines = [f"### {m.get('stage', '?')}", "",
             f"{m.get('rows_in', m.get('rows', 0)):,} rows in, {m.get('rows', 0):,} kept, "
             f"{m.get('removed', 0):,} removed.", ""]
    if cfg:
        lines += ["Configuration:", "", "```json",
                  json.dumps(cfg, indent=1, sort_keys=True, default=str), "```", ""]
    reasons = m.get("reasons") or {}
    if reasons:
        lines += ["| reason | rows | bytes |", "|---|---|---|"]
        lines += [f"| {r} | {c['rows']:,} | {format_bytes(c['bytes'])} |"
                  for r, c in sorted(reasons.items(), key=lambda x: -x[1]["rows"])]
        lines.append("")
    return lines


def stage_card(name: str, manifest: dict[str, Any], files: Iterable[str]) -> str:
    """The card of a stage's output folder."""
    cfgs = configs(manifest, files)
    names = [c["config_name"] for c in cfgs]
    meta = {"pretty_name": name, "tags": ["code", "corpus"], "configs": cfgs}
    what = ("token shards" if manifest.get("tokens") else "GitHub-shaped tables"
            if manifest.get("tables") else "documents")
    body = [f"# {name}", "",
            f"Output of the corpus `{manifest.get('stage')}` stage ({what}).", "",
            "## Loading", "", "```python", "from datasets import load_dataset", ""]
    body += [f'load_dataset("{name}"' + ("" if c == "default" else f', "{c}"') + ")"
             for c in names]
    body += ["```", ""]
    if "default" in names and not (manifest.get("tokens") or manifest.get("parquet")):
        body += ["Any Parquet reader pointed at `data/` reads exactly the documents "
                 "(pandas, pyarrow, polars, Dask, DuckDB); `removed/` holds one row per "
                 "document this stage dropped, with its reason.", ""]
    body += ["## What this stage did", "", *stage_section(manifest)]
    return render_text(meta, body)


def write(out: Any, manifest: dict[str, Any]) -> None:
    """Write the card of a finished stage output (a DatasetDir) from its manifest, before
    the manifest's file list is taken (the card is one of its files)."""
    name = posixpath.basename(out.path.rstrip("/")) or "dataset"
    text = stage_card(name, manifest, out.files()).encode()
    out._atomic(FILE, lambda f: f.write(text))
