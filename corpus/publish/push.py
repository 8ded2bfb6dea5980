"""`corpus push`: a dataset directory to a Hugging Face Hub dataset repository.

Thin on purpose: the Hub layout and the card are written to a local staging folder (our code,
tested), then `HfApi.upload_folder` sends it (huggingface_hub's code: Xet when hf_xet is
installed, git-LFS otherwise; objects the Hub already has are not sent again, so an interrupted
push resumes). The token comes from the argument, HF_TOKEN or `hf auth login`; it is never
printed or logged here.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from corpus.errors import ConfigError, CorpusError
from corpus.publish import card as cards
from corpus.publish.layout import Layout, LayoutOptions, build


class HubError(CorpusError):
    """The Hub refused or could not be reached: one sentence, never the token."""


@dataclass
class PushOptions:
    repo_id: str
    private: bool = False
    layout: LayoutOptions | None = None
    staging: str | None = None  # keep the Hub layout here (re-runs reuse it)
    commit_message: str | None = None
    deadline_s: float = 60.0  # per connect / read / write: huggingface_hub waits forever


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
    """Stage the Hub layout and card of dataset `url`, then upload it to `opts.repo_id`."""
    if opts.repo_id.count("/") != 1 or not all(opts.repo_id.split("/")):
        raise ConfigError(f"--repo-id must be ORG/NAME, not {opts.repo_id!r}")
    layout_opts = opts.layout or LayoutOptions()
    tmp = None
    if opts.staging is None:
        tmp = tempfile.TemporaryDirectory(prefix="corpus-push-")
    folder = opts.staging or tmp.name  # type: ignore[union-attr]
    try:
        layout = build(url, folder, layout_opts)
        say(("reusing the staged layout in " if layout.reused else "staged ")
            + ", ".join(f"{s}: {v['rows']:,} rows in {len(v['files'])} shards"
                        for s, v in layout.splits.items()))
        licenses, languages = _counts(layout)
        card = cards.render(opts.repo_id, layout, url, licenses, languages)
        card.save(f"{folder}/README.md")
        return _upload(folder, opts, layout, token, say)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _upload(folder: str, opts: PushOptions, layout: Layout, token: str | None,
            say: Callable[[str], None]) -> dict[str, Any]:
    import huggingface_hub as hf
    from huggingface_hub import HfApi
    from huggingface_hub import errors as he

    # huggingface_hub's own client with a timeout instead of none (its default waits forever
    # on a Hub that accepts connections and never answers); skipped if its internals move
    default = getattr(getattr(hf.utils, "_http", None), "default_client_factory", None)
    if default is not None:
        def bounded() -> Any:
            client = default()
            client.timeout = type(client.timeout)(opts.deadline_s)
            return client

        hf.set_client_factory(bounded)
    api = HfApi(token=token)
    try:
        repo_url = api.create_repo(opts.repo_id, repo_type="dataset", private=opts.private,
                                   exist_ok=True)
        commit = api.upload_folder(
            repo_id=opts.repo_id, repo_type="dataset", folder_path=folder,
            allow_patterns=["README.md", "data/*.parquet"],
            delete_patterns=["data/*.parquet"],  # shards of an earlier push that are not ours
            commit_message=opts.commit_message or f"corpus push: {layout.rows_in:,} files")
    except (he.HfHubHTTPError, he.LocalTokenNotFoundError, *_transport_errors(), OSError) as e:
        raise explain(e, opts.repo_id) from None
    finally:
        if default is not None:
            hf.set_client_factory(default)
    say(f"pushed to {repo_url} ({commit.oid[:12] if commit.oid else 'no change'})")
    return {"url": str(repo_url), "commit": commit.oid,
            "splits": {s: {"rows": v["rows"], "shards": len(v["files"])}
                       for s, v in layout.splits.items()}}

