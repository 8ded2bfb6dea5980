"""`corpus push`: a dataset directory, or the output of `corpus shard --format parquet`, to a
Hugging Face Hub dataset repository; with `--type model`, a model folder to a model repository.

Thin on purpose: the Hub layout and the card are written to a local staging folder (our code,
tested; a shard folder already is one and is sent as it is), then `HfApi.upload_folder` sends
it (huggingface_hub's code: Xet when hf_xet is installed, git-LFS otherwise; objects the Hub
already has are not sent again, so an interrupted push resumes). The token comes from the
argument, HF_TOKEN or `hf auth login`; it is never printed or logged here.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from corpus.errors import ConfigError, CorpusError, InputError
from corpus.io import DatasetDir
from corpus.publish import card as cards
from corpus.publish.layout import Layout, LayoutOptions, build
from corpus.publish.split import SHARD_BYTES
from corpus.splits import SplitRule, empty_notes, valid_repos

#: What a dataset push sends, and the shards of an earlier push it replaces.
DATASET_FILES = [cards.FILE, "data/*.parquet"]
#: A model folder needs these (weights: one file, or the index of sharded ones).
MODEL_FILES = ("config.json", "model.safetensors")


class HubError(CorpusError):
    """The Hub refused or could not be reached: one sentence, never the token."""


@dataclass
class PushOptions:
    repo_id: str
    private: bool = False
    rule: SplitRule | None = None  # None: the default rule, or the one a shard folder has
    shard_bytes: int | None = None  # None: 500 MB, or what a shard folder was made with
    staging: str | None = None  # keep the Hub layout here (re-runs reuse it)
    commit_message: str | None = None
    deadline_s: float = 60.0  # per connect / read / write: huggingface_hub waits forever
    repo_type: str = "dataset"  # or "model": a Hugging Face model folder


def _counts(layout: Layout) -> tuple[dict[str, int], dict[str, int]]:
    """Files per license and per language, over what is pushed (from the staged shards)."""
    import pyarrow.parquet as pq

    licenses: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    for split in layout.splits.values():
        for f in split["files"]:
            t = pq.read_table(f"{layout.folder}/{f}", columns=["license", "language"])
            for col, counter in (("license", licenses), ("language", languages)):
                vc = pc.value_counts(pc.fill_null(t.column(col), "unknown")).to_pylist()
                counter.update({v["values"]: v["counts"] for v in vc})
    return dict(licenses), dict(languages)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's errors: huggingface_hub 1.x uses httpx, 2.x its fork httpx2."""
    found = []
    for name in ("httpx2", "httpx", "requests"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        found.append(mod.RequestException if name == "requests" else mod.HTTPError)
    return tuple(found)


def explain(e: BaseException, repo_id: str) -> HubError:
    """One sentence per failure a user can act on. Messages never include request headers."""
    from huggingface_hub import errors as he

    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, he.LocalTokenNotFoundError) or status == 401:
        return HubError("not logged in to the Hugging Face Hub, or the token was refused: "
                        "set HF_TOKEN or run `hf auth login`")
    if status == 403:
        return HubError(f"the token may not create or write {repo_id} (403): check that it "
                        "has write access to that user or organization")
    if isinstance(e, he.RepositoryNotFoundError) or status == 404:
        return HubError(f"repository {repo_id} not found (or not visible to this token)")
    if status is not None:
        return HubError(f"the Hub answered {status} for {repo_id}: "
                        f"{str(e).splitlines()[0][:300]}")
    return HubError(f"cannot reach the Hugging Face Hub ({type(e).__name__}): "
                    f"{str(e).splitlines()[0][:300] if str(e) else 'no answer'}")


def push(url: str, opts: PushOptions, token: str | None = None,
         say: Callable[[str], None] = print) -> dict[str, Any]:
    """Stage the Hub layout and card of dataset `url`, then upload it to `opts.repo_id` (a
    shard folder as it is; with repo_type "model", the model folder `url`)."""
    if opts.repo_id.count("/") != 1 or not all(opts.repo_id.split("/")):
        raise ConfigError(f"--repo-id must be ORG/NAME, not {opts.repo_id!r}")
    if opts.repo_type == "model":
        return push_model(url, opts, token, say)
    if opts.repo_type != "dataset":
        raise ConfigError(f"--type must be dataset or model, not {opts.repo_type!r}")
    sharded = shard_folder(url)
    if sharded is not None:
        return _push_shards(url, sharded, opts, token, say)
    rule = opts.rule or SplitRule()
    layout_opts = LayoutOptions(rule, opts.shard_bytes or SHARD_BYTES)
    tmp = None
    if opts.staging is None:
        tmp = tempfile.TemporaryDirectory(prefix="corpus-push-")
    folder = opts.staging or tmp.name  # type: ignore[union-attr]
    try:
        layout = build(url, folder, layout_opts)
        say(("reusing the staged layout in " if layout.reused else "staged ")
            + ", ".join([f"{s}: {v['rows']:,} rows in {len(v['files'])} shards"
                         for s, v in layout.splits.items()] + empty_notes(rule, layout.splits)))
        licenses, languages = _counts(layout)
        card = cards.render(opts.repo_id, layout.splits, url, licenses, languages,
                            rule.describe())
        Path(folder, cards.FILE).write_text(card)
        done = _upload(folder, opts, DATASET_FILES, DATASET_FILES[1:],
                       f"corpus push: {layout.rows_in:,} files", token, say)
        return {**done, "splits": _split_counts(layout.splits)}
    finally:
        if tmp is not None:
            tmp.cleanup()


def _split_counts(splits: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {s: {"rows": v["rows"], "shards": len(v["files"])} for s, v in splits.items()}


def shard_folder(url: str) -> dict[str, Any] | None:
    """The manifest of a finished `corpus shard --format parquet` output (already in Hub
    layout, with its card), or None when `url` is not one."""
    from corpus.publish.shard_job import STAGE

    d = DatasetDir(url)
    m = d.manifest()
    if m is None or m.get("stage") != STAGE:
        return None
    if d.complete_manifest() is None:
        raise InputError(f"{url} is an unfinished or damaged output of `corpus shard --format "
                         "parquet`: run that command again to finish it")
    if not d.exists(cards.FILE):
        raise InputError(f"{url} has no dataset card ({cards.FILE}): an earlier corpus made "
                         "it; run `corpus shard --format parquet` again with --overwrite")
    return m


def _push_shards(url: str, m: dict[str, Any], opts: PushOptions, token: str | None,
                 say: Callable[[str], None]) -> dict[str, Any]:
    """Upload a shard folder as it is; split or shard options other than its own are
    refused (they would need new shards: that is `corpus shard`'s job)."""
    cfg = m.get("config") or {}
    made = {k: cfg[k] for k in ("valid_fraction", "test_fraction", "valid_from") if k in cfg}
    if opts.rule is not None:
        repos = valid_repos(opts.rule.valid_from) if opts.rule.valid_from else None
        if opts.rule.config(repos) != made:
            raise ConfigError(f"{url} is already split ({_words(made)}); push uploads it as it "
                              "is: shard it again with the split wanted, or push its input")
    if opts.shard_bytes is not None and opts.shard_bytes != cfg.get("shard_bytes"):
        raise ConfigError(f"{url} is already sharded ({cfg.get('shard_bytes'):,} bytes of "
                          "content per shard); push uploads it as it is: shard it again with "
                          "the --shard-size wanted, or push its input")
    from corpus.tokens.format import is_local

    if not is_local(DatasetDir(url).fs):
        raise InputError(f"{url}: a shard folder is uploaded from a local folder: copy it "
                         "to one first")
    splits = m["parquet"]["splits"]
    say(f"uploading {url} as it is (a `corpus shard --format parquet` output): "
        + ", ".join(f"{s}: {v['rows']:,} rows in {len(v['files'])} shards"
                    for s, v in splits.items())
        + ("; --staging is not used" if opts.staging else ""))
    done = _upload(DatasetDir(url).path, opts, DATASET_FILES, DATASET_FILES[1:],
                   f"corpus push: {m['rows']:,} files", token, say)
    return {**done, "splits": _split_counts(splits)}


def _words(cfg: dict[str, Any]) -> str:
    return ", ".join(f"{k} {'(a repository list)' if k == 'valid_from' else v}"
                     for k, v in cfg.items())


def push_model(folder: str, opts: PushOptions, token: str | None,
               say: Callable[[str], None]) -> dict[str, Any]:
    """Upload a Hugging Face model folder (config.json, model.safetensors, the tokenizer and
    README.md card when present: its top-level files) to a model repository."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"no such model folder: {folder}")
    missing = [f for f in MODEL_FILES if not (root / f).is_file()]
    if "model.safetensors" in missing and (root / "model.safetensors.index.json").is_file():
        missing.remove("model.safetensors")  # sharded weights
    if missing:
        raise InputError(f"{folder} is not a Hugging Face model folder: it has no "
                         f"{' and no '.join(missing)} (write one with save_pretrained or "
                         "`corpus export`)")
    files = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    say(f"uploading {len(files)} files of {folder}: {', '.join(files)}")
    done = _upload(folder, opts, files, ["*.safetensors", "*.safetensors.index.json"],
                   f"corpus push: model, {len(files)} files", token, say)
    return {**done, "files": files}


@contextlib.contextmanager
def _bounded_client(deadline_s: float) -> Iterator[None]:
    """huggingface_hub's own client with a timeout instead of none (its default waits
    forever on a Hub that accepts connections and never answers); skipped if its internals
    move."""
    import huggingface_hub as hf

    default = getattr(getattr(hf.utils, "_http", None), "default_client_factory", None)
    if default is None:
        yield
        return

    def bounded() -> Any:
        client = default()
        client.timeout = type(client.timeout)(deadline_s)
        return client

    hf.set_client_factory(bounded)
    try:
        yield
    finally:
        hf.set_client_factory(default)


def _upload(folder: str, opts: PushOptions, allow: list[str], delete: list[str],
            message: str, token: str | None, say: Callable[[str], None]) -> dict[str, Any]:
    """Create the repository if needed and send `allow` of `folder` in one commit, deleting
    the repository's files matching `delete` that are not part of it (an earlier push's)."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as he

    api = HfApi(token=token)
    with _bounded_client(opts.deadline_s):
        try:
            repo_url = api.create_repo(opts.repo_id, repo_type=opts.repo_type,
                                       private=opts.private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=opts.repo_id, repo_type=opts.repo_type, folder_path=folder,
                allow_patterns=allow, delete_patterns=delete,
                commit_message=opts.commit_message or message)
        except (he.HfHubHTTPError, he.LocalTokenNotFoundError, *_transport_errors(),
                OSError) as e:
            raise explain(e, opts.repo_id) from None
    say(f"pushed to {repo_url} ({commit.oid[:12] if commit.oid else 'no change'})")
    return {"url": str(repo_url), "commit": commit.oid}

