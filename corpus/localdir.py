"""The local folder of a stage that works on local files (train: DeepSpeed checkpoints; export
and eval: Hugging Face folders) when its output is a URL such as gs://.

Such a stage runs in `local_dir(url)` (under CORPUS_LOCAL_DIR, default ~/.cache/corpus/local,
by the URL's protocol and path) and `publish` then copies what it wrote to the URL, less
DeepSpeed's checkpoints, which stay on the machine that trained (docs/training.md). A later
stage on the same machine reads the local folder.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from corpus.io import url_to_fs
from corpus.lock import LOCK_FILE


def is_remote(url: str) -> bool:
    fs, _ = url_to_fs(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return "file" not in protocols and "local" not in protocols


def local_root() -> Path:
    return Path(os.environ.get("CORPUS_LOCAL_DIR")
                or Path.home() / ".cache" / "corpus" / "local")


def local_dir(url: str) -> str:
    """`url` itself when it is a local path; else its folder on this machine."""
    if not is_remote(url):
        return url
    fs, path = url_to_fs(url)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return str(local_root() / protocol / path.strip("/"))


def publish(local: str, url: str, keep_local: tuple[str, ...] = ()) -> list[str]:
    """Copy every file under `local` to `url` (not the lock, nor the top-level folders in
    `keep_local`); return the relative paths copied. Nothing to do when `url` is local."""
    if not is_remote(url):
        return []
    fs, path = url_to_fs(url)
    root = Path(local)
    copied = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if not f.is_file() or f.name == LOCK_FILE or rel.split("/", 1)[0] in keep_local:
            continue
        fs.put_file(str(f), posixpath.join(path, rel))
        copied.append(rel)
    return copied
