"""The dataset card (README.md with YAML metadata) of a pushed corpus and of `corpus shard
--format parquet` output: what it is, where it came from, and what each stage removed, from the
manifests of the stage chain. Its `configs` name each split's files, so `datasets.load_dataset`
of the folder or of the Hub repository gives the splits. Written by the one card writer,
corpus/dataset_card.py (this module adds the Hub's metadata and the stage chain)."""

from __future__ import annotations

from typing import Any

from corpus.dataset_card import FILE, render_text, split_config, stage_section
from corpus.io import DatasetDir
from corpus.manifest import resolve_url
from corpus.units import format_bytes

__all__ = ["FILE", "HUB_LICENSES", "render", "size_category", "stage_chain", "stage_section"]

#: License ids the Hub's metadata accepts that extraction produces (SPDX, lowercased); any
#: other value (an expression like "mit and apache-2.0", a custom key) makes the card say
#: `other` and list the values in the body.
HUB_LICENSES = {
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "isc", "mpl-2.0",
    "lgpl-2.1", "lgpl-3.0", "lgpl-lr", "gpl-2.0", "gpl-3.0", "agpl-3.0", "cc0-1.0", "unlicense",
    "bsl-1.0", "artistic-2.0", "epl-1.0", "epl-2.0", "ecl-2.0", "afl-3.0", "osl-3.0", "wtfpl",
    "postgresql", "ofl-1.1", "lppl-1.3c", "cc-by-4.0", "cc-by-sa-4.0", "zlib", "eupl-1.1",
}
SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
         (1_000_000_000, "100M<n<1B"), (10**10, "1B<n<10B"), (10**11, "10B<n<100B"),
         (10**12, "100B<n<1T")]


def size_category(n: int) -> str:
    return next((name for limit, name in SIZES if n < limit), "n>1T")


def stage_chain(url: str, limit: int = 20) -> list[dict[str, Any]]:
    """Manifests from the extraction to `url`, oldest first, following each one's `input`."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = url
    while current and current not in seen and len(chain) < limit:
        seen.add(current)
        try:
            m = DatasetDir(current).manifest()
        except Exception:  # an input that moved or is unreadable ends the chain
            m = None
        if m is None:
            break
        chain.append({**m, "_url": current})
        current = resolve_url(m.get("input"), current)
    return chain[::-1]


def render(repo_id: str, splits: dict[str, dict[str, Any]], url: str, licenses: dict[str, int],
           languages: dict[str, int], rule: str | None = None) -> str:
    """The card's text for these splits (name -> files relative to the folder, rows,
    content_bytes); `rule`: the split rule in words. The metadata goes through
    huggingface_hub's DatasetCardData, so it is what the Hub parses."""
    from huggingface_hub import DatasetCardData

    rows = sum(s["rows"] for s in splits.values())
    known = sorted(k for k in licenses if k in HUB_LICENSES)
    other = sorted(k for k in licenses if k not in HUB_LICENSES)
    data = DatasetCardData(
        license=known + (["other"] if other else []) or None,
        license_name="various (see the license table)" if other else None,
        language=["code"], tags=["code", "corpus"], pretty_name=repo_id.split("/")[-1],
        size_categories=[size_category(rows)], task_categories=["text-generation"],
        configs=[split_config("default", list(splits), "data/{}-*.parquet")],
        dataset_info={"features": None, "splits": [
            {"name": s, "num_examples": v["rows"], "num_bytes": v["content_bytes"]}
            for s, v in splits.items()]},
    )
    data_dict = data.to_dict()
    data_dict["dataset_info"].pop("features", None)
    body = [f"# {repo_id.split('/')[-1]}", "",
            "Source code files for training code language models, built with corpus "
            "from the extraction to the last stage listed below. One row per file: "
            "`content` plus `repo_name`, `path`, `license`, `language`, the blob `id` and "
            "the metrics the filters computed.", "",
            "## Splits", "", *([f"Split rule: {rule}.", ""] if rule else []),
            "| split | files | content | shards |", "|---|---|---|---|"]
    body += [f"| {s} | {v['rows']:,} | {format_bytes(v['content_bytes'])} | {len(v['files'])} |"
             for s, v in splits.items()]
    body += ["", "## Languages", "", "| language | files |", "|---|---|"]
    body += [f"| {k} | {v:,} |" for k, v in sorted(languages.items(), key=lambda x: -x[1])]
    body += ["", "## Licenses", "",
             "Each file keeps its repository's license (`license` column)."
             + (" Values that are not a single Hub license id are listed here and make the "
                "metadata say `other`." if other else ""), "", "| license | files |", "|---|---|"]
    body += [f"| {k} | {v:,} |" for k, v in sorted(licenses.items(), key=lambda x: -x[1])]
    body += ["", "## How it was made", "",
             "Each stage read the previous one's output; rows in = kept + removed, every "
             "removal with its reason.", ""]
    for m in stage_chain(url):
        body += stage_section(m)
    return render_text(data_dict, body)

