"""A Hugging Face Hub stand-in for tests: stdlib only, in memory, dataset and model repos.

No local Hub server exists on any package registry (../shared/COMPONENTS.md, section 3: the
candidates are a CLI without its server, a read-only mirror, name reservations), so this is the
one fake in the suite. It serves exactly the endpoints the real `huggingface_hub` and `datasets`
clients call for create_repo, upload_folder (with HF_HUB_DISABLE_XET=1: git-LFS "basic"
transfers), dataset_info, HfFileSystem and load_dataset (also streaming), and for model repos
(`repos` holds datasets, `models` models: the Hub's URLs for them have no `datasets/` part)
upload_folder and snapshot_download. It checks the bearer token (401 otherwise) and answers 403
for organizations listed in `forbidden`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Repo:
    private: bool = False
    files: dict[str, bytes] = field(default_factory=dict)  # path -> content
    lfs: set[str] = field(default_factory=set)  # paths stored as LFS objects
    commits: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)  # dataset repos
    models: dict[str, Repo] = field(default_factory=dict)  # model repos
    objects: dict[str, bytes] = field(default_factory=dict)  # LFS oid -> bytes
    forbidden: set[str] = field(default_factory=set)  # namespaces the token may not write
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    state: HubState  # set on the subclass made by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # --- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        data = json.dumps(body).encode() if isinstance(body, dict | list) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code} if code else None)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def _repos(self, kind: str | None) -> dict[str, Repo]:
        """kind: "datasets", or "models" / "" (model URLs have no prefix)."""
        return self.state.repos if kind == "datasets" else self.state.models

    def _repo(self, repo_id: str, kind: str | None = "datasets") -> Repo | None:
        repo = self._repos(kind).get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404, f"Repository {repo_id} not found", "RepoNotFound")
            return None
        return repo

    def _write_access(self, repo_id: str) -> bool:
        if not self._authorized():
            self._error(401, "Invalid credentials in Authorization header")
            return False
        if repo_id.split("/")[0] in self.state.forbidden:
            self._error(403, f"You don't have the rights to create or write to {repo_id}")
            return False
        return True

    def _route(self) -> None:
        path = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(path.query)
        self.state.requests.append((self.command, path.path))
        p = urllib.parse.unquote(path.path)
        for pattern, method in ROUTES:
            m = re.fullmatch(pattern, p)
            verb = "GET" if self.command == "HEAD" else self.command
            if m and method[0] == verb:
                with self.state.lock:
                    return getattr(self, method[1])(**m.groupdict())
        self._error(404, f"no route for {self.command} {p}")

    do_GET = do_POST = do_PUT = do_HEAD = _route

    # --- API --------------------------------------------------------------------------------
    def whoami(self) -> None:
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        self._send(200, {"type": "user", "name": "tester", "orgs": [],
                         "auth": {"accessToken": {"role": "write"}}})

    def create(self) -> None:
        spec = json.loads(self._body())
        name = f"{spec.get('organization') or 'tester'}/{spec['name']}"
        if not self._write_access(name):
            return None
        kind = "datasets" if spec.get("type") == "dataset" else "models"
        url = f"http://{self.headers['Host']}/{'datasets/' if kind == 'datasets' else ''}{name}"
        if name in self._repos(kind):
            return self._send(409, {"error": f"You already created this {kind[:-1]} repo",
                                    "url": url})
        self._repos(kind)[name] = Repo(private=bool(spec.get("private"))
                                       or spec.get("visibility") == "private")
        self._send(200, {"url": url, "name": name})

    def validate_yaml(self) -> None:
        self._body()
        self._send(200, {"errors": [], "warnings": []})

    def info(self, kind: str | None, repo: str, rev: str | None = None) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return None
        if rev not in (None, "main", r.sha):
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        self._send(200, {"id": repo, "_id": repo, "sha": r.sha, "private": r.private,
                         "disabled": False, "gated": False, "downloads": 0, "likes": 0,
                         "tags": [], "lastModified": "2026-01-01T00:00:00.000Z",
                         "siblings": [{"rfilename": f} for f in sorted(r.files)]})

    def preupload(self, kind: str | None, repo: str, rev: str) -> None:
        if not self._write_access(repo) or self._repo(repo, kind) is None:
            return None
        files = json.loads(self._body())["files"]
        self._send(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                    "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES)
                                    else "regular"} for f in files]})

    def lfs_batch(self, kind: str | None, repo: str) -> None:
        if not self._write_access(repo) or self._repo(repo, kind) is None:
            return None
        spec = json.loads(self._body())
        base = f"http://{self.headers['Host']}/lfs-upload"
        objects = []
        for o in spec["objects"]:
            entry: dict[str, Any] = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.state.objects:
                entry["actions"] = {"upload": {"href": f"{base}/{o['oid']}", "header": {}},
                                    "verify": {"href": f"{base}/{o['oid']}/verify",
                                               "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects},
                   content_type="application/vnd.git-lfs+json")

    def lfs_put(self, oid: str) -> None:
        data = self._body()
        if _oid(data) != oid:
            return self._error(400, "sha256 mismatch")
        self.state.objects[oid] = data
        self._send(200, b"")

    def lfs_verify(self, oid: str) -> None:
        self._body()
        self._send(200 if oid in self.state.objects else 404, {})

    def commit(self, kind: str | None, repo: str, rev: str) -> None:
        if not self._write_access(repo):
            return None
        r = self._repo(repo, kind)
        if r is None:
            return None
        files, lfs = dict(r.files), set(r.lfs)
        for line in self._body().splitlines():
            item = json.loads(line)
            key, v = item["key"], item["value"]
            if key == "file":
                files[v["path"]] = base64.b64decode(v["content"])
                lfs.discard(v["path"])
            elif key == "lfsFile":
                if v["oid"] not in self.state.objects:
                    return self._error(422, f"LFS object {v['oid']} was never uploaded")
                files[v["path"]] = self.state.objects[v["oid"]]
                lfs.add(v["path"])
            elif key == "deletedFile":
                files.pop(v["path"], None)
                lfs.discard(v["path"])
            elif key == "deletedFolder":
                for f in [f for f in files if f.startswith(v["path"].rstrip("/") + "/")]:
                    files.pop(f)
                    lfs.discard(f)
        r.files, r.lfs = files, lfs
        r.commits.append(hashlib.sha1(json.dumps(
            [r.sha, {k: _oid(v) for k, v in sorted(files.items())}]).encode()).hexdigest())
        url = f"http://{self.headers['Host']}/{kind + '/' if kind == 'datasets' else ''}" \
              f"{repo}/commit/{r.sha}"
        self._send(200, {"commitUrl": url, "commitOid": r.sha, "pullRequestUrl": None,
                         "success": True})

    def _entry(self, r: Repo, path: str) -> dict[str, Any]:
        if path in r.files:
            data = r.files[path]
            e: dict[str, Any] = {"type": "file", "path": path, "size": len(data),
                                 "oid": _git_oid(data)}
            if path in r.lfs:
                e["lfs"] = {"oid": _oid(data), "size": len(data), "pointerSize": 134}
            return e
        return {"type": "directory", "path": path, "oid": _git_oid(path.encode())}

    def tree(self, kind: str | None, repo: str, rev: str, path: str = "") -> None:
        r = self._repo(repo, kind)
        if r is None:
            return None
        prefix = path.strip("/")
        recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
        seen: dict[str, dict] = {}
        for f in sorted(r.files):
            if prefix and not f.startswith(prefix + "/"):
                continue
            rest = f[len(prefix) + 1:] if prefix else f
            parts = rest.split("/")
            for i in range(1, len(parts)):
                d = "/".join(([prefix] if prefix else []) + parts[:i])
                if recursive or i == 1:
                    seen.setdefault(d, self._entry(r, d))
            if recursive or len(parts) == 1:
                seen[f] = self._entry(r, f)
        if prefix and not seen:
            return self._error(404, f"{path} does not exist", "EntryNotFound")
        self._send(200, list(seen.values()))

    def paths_info(self, kind: str | None, repo: str, rev: str) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return None
        body = self._body()
        try:
            paths = json.loads(body)["paths"]
        except ValueError:
            paths = urllib.parse.parse_qs(body.decode()).get("paths", [])
        dirs = {"/".join(f.split("/")[:i]) for f in r.files for i in range(1, f.count("/") + 1)}
        self._send(200, [self._entry(r, p) for p in paths if p in r.files or p in dirs])

    def resolve(self, kind: str | None, repo: str, rev: str, path: str) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return None
        if path not in r.files:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound")
        data = r.files[path]
        etag = _oid(data) if path in r.lfs else _git_oid(data)
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": r.sha, "Accept-Ranges": "bytes"}
        if path in r.lfs:
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": len(data)}
        rng = self.headers.get("Range")
        if rng and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())):
            start = int(m[1])
            end = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start:end + 1], headers, "application/octet-stream")
        self._send(200, data, headers, "application/octet-stream")


#: Files stored as LFS objects (what the Hub's .gitattributes sends to LFS).
LFS_SUFFIXES = (".parquet", ".safetensors", ".bin")
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
REV = r"(?P<rev>[^/]+)"
API = r"/api/(?P<kind>datasets|models)"  # the repo type's API prefix
FILES = r"(?:/(?P<kind>datasets))?"  # file URLs: /datasets/ORG/NAME/…, or /ORG/NAME/… (models)
ROUTES = [
    (r"/api/whoami-v2", ("GET", "whoami")),
    (r"/api/repos/create", ("POST", "create")),
    (r"/api/validate-yaml", ("POST", "validate_yaml")),
    (rf"{API}/{REPO}", ("GET", "info")),
    (rf"{API}/{REPO}/revision/{REV}", ("GET", "info")),
    (rf"{API}/{REPO}/preupload/{REV}", ("POST", "preupload")),
    (rf"{API}/{REPO}/commit/{REV}", ("POST", "commit")),
    (rf"{API}/{REPO}/tree/{REV}/?(?P<path>.*)", ("GET", "tree")),
    (rf"{API}/{REPO}/paths-info/{REV}", ("POST", "paths_info")),
    (rf"{FILES}/{REPO}\.git/info/lfs/objects/batch", ("POST", "lfs_batch")),
    (r"/lfs-upload/(?P<oid>[0-9a-f]{64})", ("PUT", "lfs_put")),
    (r"/lfs-upload/(?P<oid>[0-9a-f]{64})/verify", ("POST", "lfs_verify")),
    (rf"{FILES}/{REPO}/resolve/{REV}/(?P<path>.+)", ("GET", "resolve")),
]


def serve(port: int, token: str) -> tuple[ThreadingHTTPServer, HubState]:
    """Start the fake Hub on 127.0.0.1:port in a daemon thread."""
    state = HubState(token=token)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state
