"""`corpus github-tables` over source folders as they come: edited files, FIFOs, sockets,
devices, unreadable files and folders, names that are not UTF-8. The repositories are real
code (idna's and certifi's installed sources, with their license files); the odd entries are
planted next to them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.github import sources
from corpus.github.blob import git_blob_id, read_blob
from corpus.github.build import GithubTablesJob, GithubTablesOptions, _read, discover
from corpus.github.names import escape, unescape
from corpus.github.safeio import Unreadable, open_regular
from corpus.io import DatasetDir
from tests.conftest import QUERIES, ROOT

#: Long enough that files written before it are no longer "racy" (sources.RACY_NS).
SETTLE_S = sources.RACY_NS / 1e9 + 0.2


def make_src(root: Path) -> Path:
    """A folder of two repositories: idna's and certifi's sources with their license files."""
    import certifi
    import idna

    src = root / "src"
    for mod in (idna, certifi):
        pkg = Path(mod.__file__).parent
        shutil.copytree(pkg, src / pkg.name / pkg.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        lic = next(pkg.parent.glob(f"{pkg.name}-*.dist-info/licenses/*"))
        shutil.copy(lic, src / pkg.name / "LICENSE")
    return src


def make_target(root: Path) -> Path:
    """idna installed into a folder of its own, like `pip install --target`."""
    import idna

    sp = Path(idna.__file__).parent.parent
    target = root / "target"
    shutil.copytree(sp / "idna", target / "idna", ignore=shutil.ignore_patterns("__pycache__"))
    info = next(sp.glob("idna-*.dist-info"))
    shutil.copytree(info, target / info.name)
    return target


def same_size_edit(path: Path, restore_mtime: bool) -> bytes:
    """Change one byte of a file; optionally put its old mtime back. Returns the new bytes."""
    st = path.stat()
    data = path.read_bytes()
    at = data.index(b"import")
    new = data[:at] + b"IMPORT" + data[at + 6:]
    path.write_bytes(new)
    if restore_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    return new


def table(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / f"{name}.parquet").to_pylist()


def content_of(out: Path, repo_name: str, path: str) -> str:
    ids = {r["id"] for r in table(out, "files")
           if r["repo_name"] == repo_name and r["path"] == path}
    (blob_id,) = ids
    return next(r["content"] for r in table(out, "contents") if r["id"] == blob_id)


# --- finding 4: reuse decided by the files, not by a folder's mtime or git HEAD -------------
def test_edits_are_seen_even_with_size_and_mtime_kept(tmp_path, engine):
    src, target = make_src(tmp_path), make_target(tmp_path)
    opts = GithubTablesOptions(sources=[str(src)], site_packages_dirs=[str(target)])
    (src / "certifi" / "LICENSE").touch()  # repos[0]: a file changed just now is "racy",
    assert discover(opts)[0].identity != discover(opts)[0].identity  # its stats not trusted yet
    time.sleep(SETTLE_S)
    out = tmp_path / "tables"
    first = engine.run(GithubTablesJob(opts, DatasetDir(str(out))))
    again = engine.run(GithubTablesJob(opts, DatasetDir(str(out))))
    assert again["runs"] == first["runs"], "nothing changed: it must be up to date"
    before = {r.name: r.identity for r in discover(opts)}
    dist = next(r.name for r in discover(opts) if r.kind == "dist")

    # a folder repository and an installed distribution, each edited keeping size and mtime
    edited = {"src/idna": (src / "idna" / "idna" / "core.py", "idna/core.py"),
              dist: (target / "idna" / "core.py", "idna/core.py")}
    new = {k: same_size_edit(p, restore_mtime=True) for k, (p, _) in edited.items()}
    time.sleep(SETTLE_S)  # not racy any more: only the files' own stats can tell
    after = {r.name: r.identity for r in discover(opts)}
    assert {n for n in before if before[n] != after[n]} == set(edited)
    rebuilt = engine.run(GithubTablesJob(opts, DatasetDir(str(out))), replace_stale=True)
    assert rebuilt["fingerprint"] != first["fingerprint"]
    assert len(rebuilt["runs"]) == 1 and rebuilt["runs"][0]["computed"]
    for key, (_, rel) in edited.items():
        assert content_of(out, key, rel) == new[key].decode()

    # an ordinary edit (new mtime) of another file of the folder repository
    newer = same_size_edit(src / "certifi" / "certifi" / "core.py", restore_mtime=False)
    time.sleep(SETTLE_S)
    third = engine.run(GithubTablesJob(opts, DatasetDir(str(out))), replace_stale=True)
    assert third["fingerprint"] != rebuilt["fingerprint"]
    assert content_of(out, "src/certifi", "certifi/core.py") == newer.decode()
    assert content_of(out, "src/idna", "idna/core.py") == new["src/idna"].decode()


PIPELINE = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
sources = ["{src}"]

[[stages]]
name = "python"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
"""


def corpus_cli(*args: str, prefix: tuple[str, ...] = (), timeout: int = 180,
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "corpus", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_run_recomputes_every_stage_after_an_edit(tmp_path):
    src, out = make_src(tmp_path), tmp_path / "out"
    config = tmp_path / "p.toml"
    config.write_text(PIPELINE.format(out=out, src=src, queries=QUERIES))
    time.sleep(SETTLE_S)
    assert (res := corpus_cli("run", str(config), "--workers", "1")).returncode == 0, res.stderr
    res = corpus_cli("run", str(config), "--workers", "1")
    assert res.returncode == 0 and res.stderr.count("up to date") == 2, res.stderr
    fps = {s: json.loads((out / s / "manifest.json").read_text())["fingerprint"]
           for s in ("tables", "python")}

    new = same_size_edit(src / "idna" / "idna" / "core.py", restore_mtime=True)
    time.sleep(SETTLE_S)
    res = corpus_cli("run", str(config), "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert "up to date" not in res.stderr
    for s in ("tables", "python"):
        assert json.loads((out / s / "manifest.json").read_text())["fingerprint"] != fps[s]
    parts = [p for p in (out / "python").rglob("data/part-*.parquet") if "removed" not in p.parts]
    docs = [d for p in parts for d in pq.read_table(p, columns=["repo_name", "path", "content"])
            .to_pylist()]
    (core,) = [d for d in docs if d["repo_name"].endswith("/idna") and d["path"] ==
               "idna/core.py"]
    assert core["content"] == new.decode()


# --- finding 5: special files never opened, skipped with a reason -------------------------
def no_dac_override() -> tuple[str, ...]:
    """Run as root without the capabilities that ignore file permissions (so chmod 000 means
    something); nothing to add for other users."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_special_and_unreadable_files_are_skipped(tmp_path):
    src, target = make_src(tmp_path), make_target(tmp_path)
    repo = src / "idna"
    os.mkfifo(repo / "pipe")
    os.mkfifo(repo / "LICENSE.fifo")  # a license-file name: license_texts must not open it
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(repo / "sock"))
    os.symlink("pipe", repo / "link_to_fifo")
    os.symlink("/dev/null", repo / "link_to_device")
    (repo / "secret.py").write_text("x = 1\n")
    (repo / "secret.py").chmod(0)
    (repo / "locked").mkdir()
    (repo / "locked" / "inside.py").write_text("y = 2\n")
    (repo / "locked").chmod(0)
    expected = {"pipe": "special-file fifo", "LICENSE.fifo": "special-file fifo",
                "sock": "special-file socket", "secret.py": "unreadable: Permission denied",
                "locked": "unreadable-directory: Permission denied"}
    try:
        os.mknod(repo / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expected["null"] = "special-file char-device"
    except OSError:
        pass  # no CAP_MKNOD here
    # an installed distribution whose license file (a License-File of its METADATA) is a FIFO
    (lic,) = target.glob("idna-*.dist-info/licenses/LICENSE.md")
    lic.unlink()
    os.mkfifo(lic)
    out = tmp_path / "tables"
    try:
        res = corpus_cli("github-tables", str(src), "--site-packages-dir", str(target),
                         "--out", str(out), "--workers", "1", prefix=no_dac_override(),
                         timeout=120)  # a regression hangs: this fails it instead
    finally:
        (repo / "locked").chmod(0o755)
    assert res.returncode == 0, res.stderr
    m = DatasetDir(str(out)).manifest()
    removed = pq.read_table(out / "removed").to_pylist()
    assert m["rows_in"] == m["rows"] + m["removed"] == len(table(out, "files")) + len(removed)
    got = {r["path"]: r["reason"] for r in removed if r["repo_name"] == "src/idna"}
    assert got == expected
    dist = {r["path"]: r["reason"] for r in removed if "/idna@" in r["repo_name"]}
    assert dist[str(lic.relative_to(target))] == "special-file fifo"
    assert m["reasons"]["special-file"]["rows"] == sum(
        v.startswith("special-file") for v in [*got.values(), *dist.values()])
    links = {r["path"]: r for r in table(out, "files") if r["repo_name"] == "src/idna"}
    for name, target_text in (("link_to_fifo", "pipe"), ("link_to_device", "/dev/null")):
        assert links[name]["mode"] == 0o120000 and links[name]["symlink_target"] == target_text
        assert links[name]["id"] == git_blob_id(target_text.encode())
    assert "src/idna" in {r["repo_name"] for r in table(out, "licenses")}


@pytest.mark.timeout(60)  # a blocking open would otherwise hold the suite for 10 minutes
def test_reads_never_block_and_say_why(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(Unreadable, match="special-file fifo"):
        read_blob(str(fifo))
    # what a race would hand the reader (a FIFO where a regular file was listed): the open
    # itself returns at once and the descriptor's fstat refuses it
    with pytest.raises(Unreadable, match="special-file fifo"):
        open_regular(str(fifo))
    assert _read(str(tmp_path / "gone.py")) == (None, "missing")
    status = "/proc/self/status"  # a regular file whose stat size (0) is not what it reads
    if os.path.exists(status):
        assert _read(status) == (None, "changed-while-read (size)")


# --- finding 6: names that are not UTF-8 are kept, escaped, and counted ---------------------
def git_hash(path: bytes) -> str:
    if shutil.which("git") is None:
        return git_blob_id(Path(os.fsdecode(path)).read_bytes())
    return subprocess.run([b"git", b"hash-object", b"--no-filters", path], check=True,
                          capture_output=True).stdout.decode().strip()


def test_names_that_are_not_utf8_are_kept_escaped(tmp_path, engine):
    src = make_src(tmp_path)
    raw_src = os.fsencode(src)
    os.rename(os.path.join(raw_src, b"certifi"), os.path.join(raw_src, b"certifi-caf\xe9"))
    idna_dir = os.path.join(raw_src, b"idna")
    planted = {b"caf\xe9.py": b"import idna\n", b"dir\xff/na\xefve.py": b"x = 1\n",
               b"x\xe9.py": b"z = 3\n"}
    os.mkdir(os.path.join(idna_dir, b"dir\xff"))
    for rel, data in planted.items():
        with open(os.path.join(idna_dir, rel), "wb") as f:
            f.write(data)
    # a UTF-8 name spelled exactly like an escaped one: the one listed second (the escaped
    # one: "\\" sorts before any surrogate) is removed as a path-collision
    (src / "idna" / "x\\xe9.py").write_text("y = 2\n")
    os.symlink(b"caf\xe9.py", os.path.join(idna_dir, b"link"))  # a target that is not UTF-8

    out = tmp_path / "tables"
    m = engine.run(GithubTablesJob(GithubTablesOptions(sources=[str(src)]),
                                   DatasetDir(str(out))))
    files = table(out, "files")
    assert {r["repo_name"] for r in files} == {"src/idna", "src/certifi-caf\\xe9"}
    ours = {r["path"]: r for r in files if r["repo_name"] == "src/idna"}
    for rel in (b"caf\xe9.py", b"dir\xff/na\xefve.py"):
        path = escape(os.fsdecode(rel))
        assert unescape(path) == rel
        assert ours[path]["id"] == git_hash(os.path.join(idna_dir, rel))
    assert ours["x\\xe9.py"]["id"] == git_blob_id(b"y = 2\n")
    assert ours["link"]["symlink_target"] == "caf\\xe9.py"
    assert ours["link"]["id"] == git_blob_id(b"caf\xe9.py")
    removed = pq.read_table(out / "removed").to_pylist()
    assert [(r["path"], r["reason"]) for r in removed] == [("x\\xe9.py", "path-collision")]
    n_certifi = sum(r["repo_name"] == "src/certifi-caf\\xe9" for r in files)
    assert m["notes"] == {"path-escaped": len(planted), "repo-name-escaped": 1,
                          "symlink-target-escaped": 1}
    assert m["rows_in"] == m["rows"] + m["removed"] and n_certifi > 5
    contents = {r["id"]: r for r in table(out, "contents")}
    assert contents[ours["caf\\xe9.py"]["id"]]["content"] == "import idna\n"
    assert "src/certifi-caf\\xe9" in {r["repo_name"] for r in table(out, "licenses")}
