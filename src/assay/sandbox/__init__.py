"""Run untrusted Python (model-written code + hidden tests) in a contained child process.

Containment, in layers (each result records what was in force: ``mode`` for the network, ``fs`` for files):

- **Separate process** in its own session/process group; a wall-clock timeout SIGKILLs the whole group.
- **Namespaces** (``mode="netns"``) when the machine allows ``unshare``: a new network namespace (only a down
  loopback: no connection can leave, not even to 127.0.0.1 on the host), a PID namespace with a fresh ``/proc`` (the
  child cannot see or signal host processes and every process it forks dies with it) and a mount namespace where
  ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are fresh tmpfs mounts, the sandbox's working directory is an empty
  directory on that tmpfs, and the user's home is hidden under an empty tmpfs. As root we use ``unshare`` directly;
  as a normal user we add a user namespace (``unshare -r``).
  Otherwise (``mode="socket-guard"``): ``socket.socket`` and friends raise inside the child. That is best-effort
  (a subprocess such as ``curl`` is not stopped) — the result says so.
- **Unprivileged uid**: when we are root the child drops to a throw-away uid/gid (one per run, from a range no account
  uses), so it cannot write anywhere outside its directory, cannot read root-only files, and ``RLIMIT_NPROC`` is
  actually enforced (the kernel ignores it for root). The Python install is bind-mounted read-only at
  ``/tmp/.python`` inside the namespace, because it may live under root's 0700 home.
- **resource limits**: RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_CORE=0.
- **Scrubbed environment**: PATH, LANG, HOME=cwd, nothing else (no API keys, no tokens).
- **Output cap**: stdout/stderr are read up to a byte limit; past it the group is killed and the run fails.

Passing is exit status 0 **and** a per-run random token printed after the tests: the token reaches the child on
stdin, which the harness reads and closes before the untrusted code runs, so ``os._exit(0)`` or ``sys.exit(0)`` in
a solution cannot fake a pass.

Example:
    >>> r = run_python("assert 1 + 1 == 2")
    >>> r.passed, r.mode
    (True, 'netns')
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10  # CPU seconds (RLIMIT_CPU): SIGXCPU then SIGKILL
    wall_s: float = 20.0  # wall clock, then SIGKILL to the whole process group
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    file_mb: int = 16  # largest file the child may write (RLIMIT_FSIZE); tmpfs is sized to 4x this
    nproc: int = 32  # processes for the child's uid (RLIMIT_NPROC)
    output_bytes: int = 256 * 1024  # stdout + stderr kept; more fails the run


@dataclass
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timeout | output_limit | error
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    mode: str  # network containment: netns | socket-guard
    fs: str  # file containment: e.g. "mountns+uid", "uid", "none"
    detail: str = ""  # one line: why it failed
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------- capability detection

_SANDBOX_UID_BASE = 200_000  # no account uses these uids; one per run avoids runs sharing an RLIMIT_NPROC count


def _unshare_cmd(rootless: bool) -> list[str]:
    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if rootless:
        cmd.insert(1, "--map-root-user")
    return cmd


@functools.lru_cache(maxsize=1)
def isolation_mode() -> str:
    """"netns" when a network+pid+mount namespace can be made here, else "socket-guard". Cached per process.

    ``ASSAY_SANDBOX_MODE=socket-guard`` forces the fallback (for testing it, or on hosts where unshare misbehaves).
    """
    forced = os.environ.get("ASSAY_SANDBOX_MODE")
    if forced in ("netns", "socket-guard"):
        return forced
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "socket-guard"
    try:
        r = subprocess.run(_unshare_cmd(os.geteuid() != 0) + ["true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "socket-guard"
    return "netns" if r.returncode == 0 else "socket-guard"


# ----------------------------------------------------------------------------------------------- child-side launcher

# Runs as the first program inside the namespaces (or directly in fallback mode). It reads its job from stdin,
# prepares the filesystem, sets limits, drops privileges and execs the harness. Kept dependency-free: it runs with -I.
_LAUNCHER = r'''
import ctypes, json, os, resource, sys
job = json.loads(sys.stdin.buffer.read().decode())
cfg = job["cfg"]
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 32, 4096, 16384

def mount(src, dst, fstype, flags, data):
    if libc.mount(src and src.encode(), dst.encode(), fstype and fstype.encode(), flags, data and data.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {dst}: {os.strerror(e)}")

py = sys.executable
fs = []
if cfg["mountns"]:
    # the interpreter first: it may sit under a home directory we are about to hide
    prefix = cfg["prefix"]
    tmpfs_mb = cfg["tmpfs_mb"]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=755")
    os.mkdir("/tmp/.python")
    mount(prefix, "/tmp/.python", None, MS_BIND | MS_REC, None)
    try:
        mount(None, "/tmp/.python", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    except OSError:
        pass  # read-only is a nicety: the unprivileged uid cannot write there anyway
    py = "/tmp/.python/" + os.path.relpath(cfg["python"], prefix)
    for d in ("/var/tmp", "/dev/shm", "/run/lock"):
        if os.path.isdir(d):
            try:
                mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
            except OSError:
                pass
    for d in cfg["hide"]:
        try:
            mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
            fs.append("hid " + d)
        except OSError:
            pass
    work, run = "/tmp/sandbox", "/tmp/.run"
    os.mkdir(work)
    os.mkdir(run)
else:
    work, run = cfg["workdir"], cfg["rundir"]
uid = cfg["uid"]
if uid is not None:
    os.chown(work, uid, uid)
    os.chmod(work, 0o700)
# the harness lives beside the working directory (readable, not writable), so the cwd starts empty
os.chmod(run, 0o755)
main = os.path.join(run, "main.py")
with open(main, "w") as f:
    f.write(job["program"])
os.chmod(main, 0o644)
os.chdir(work)
lim = cfg["limits"]
env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work,
       "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
if cfg["mountns"]:
    env["LD_LIBRARY_PATH"] = "/tmp/.python/lib"  # a RUNPATH into the hidden home would not resolve
# the token goes to the harness through a pipe on fd 0; the harness reads it and closes fd 0 before user code runs
r, w = os.pipe()
os.write(w, (job["token"] + "\n").encode())
os.close(w)
# Fork once: this process stays (as pid 1 of the namespace, still privileged) and reports how the child ended;
# the child drops to the sandbox uid, so it cannot signal us, and gets ordinary signal semantics (not pid 1's).
if cfg.get("python_override"):
    py = cfg["python_override"]

def landlock(workdir):
    """Writes only under workdir, reads and execs anywhere; no TCP bind/connect (ABI 4+); no signals or abstract
    unix sockets outside the sandbox (ABI 6+). Inherited by every process the code starts. Returns the ABI."""
    sc = libc.syscall
    sc.restype = ctypes.c_long
    abi = sc(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi < 1:
        return 0
    read = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
    fs_all = (1 << 13) - 1
    if abi >= 2:
        fs_all |= 1 << 13  # REFER
    if abi >= 3:
        fs_all |= 1 << 14  # TRUNCATE
    if abi >= 5:
        fs_all |= 1 << 15  # IOCTL_DEV
    class Attr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]
    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    attr = Attr(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    rs = sc(444, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rs < 0:
        return 0
    def allow(path, access):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = Beneath(access, fd)
            if sc(445, ctypes.c_int(rs), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule " + path)
        finally:
            os.close(fd)
    allow("/", read)
    allow(workdir, fs_all)
    file_rw = (1 << 1) | (1 << 2) | ((1 << 14) if abi >= 3 else 0)
    for dev in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"):
        if os.path.exists(dev):
            allow(dev, file_rw)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required to restrict without CAP_SYS_ADMIN
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if sc(446, ctypes.c_int(rs), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(rs)
    return abi

pid = os.fork()
if pid == 0:
    try:
        os.dup2(r, 0)
        os.close(r)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_mb"] << 20, lim["file_mb"] << 20))
        resource.setrlimit(resource.RLIMIT_AS, (lim["memory_mb"] << 20, lim["memory_mb"] << 20))
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
        if cfg.get("landlock") and landlock(work) < 1:
            raise OSError("landlock was available to the parent but not here")
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        os.execve(py, [py, "-I", main], env)
    except BaseException as e:
        os.write(2, f"sandbox setup failed: {e!r}\n".encode())
        os._exit(70)
os.close(r)
sys.stdout.flush()
while True:
    try:
        _, status = os.waitpid(pid, 0)
        break
    except InterruptedError:
        continue
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    os.write(2, f"\n[sandbox] killed by signal {sig}\n".encode())
    os._exit(128 + sig)
os._exit(os.WEXITSTATUS(status))
'''

_GUARD = r'''
def _assay_no_network():
    import socket, _socket
    class _Blocked(OSError):
        pass
    def _deny(*a, **k):
        raise _Blocked("network access is disabled in the assay sandbox")
    class _NoSocket(socket.socket):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if family in (-1, socket.AF_INET, socket.AF_INET6) or fileno is not None:
                _deny()
            super().__init__(family, type, proto, fileno)
    socket.socket = _NoSocket
    _socket.socket = _NoSocket
    socket.SocketType = _NoSocket
    socket.create_connection = _deny
    socket.getaddrinfo = _deny
    socket.gethostbyname = _deny
    socket.fromfd = _deny
_assay_no_network()
del _assay_no_network
'''

# Only when the child runs as the caller's own uid (fallback, fs="none"): refuse signals to the parent chain and to
# process groups. Best-effort — ctypes can still call kill(2) — which is why the result records fs="none".
_KILL_GUARD = r'''
def _assay_no_kill(protected):
    import os, signal
    real_kill = os.kill
    protected = set(protected) | {os.getppid()}
    def kill(pid, sig):
        if pid in protected or pid < 0:
            raise PermissionError(1, "signalling this process is not allowed in the assay sandbox")
        return real_kill(pid, sig)
    def killpg(pgid, sig):
        raise PermissionError(1, "signalling process groups is not allowed in the assay sandbox")
    os.kill, os.killpg = kill, killpg
    if hasattr(signal, "pidfd_send_signal"):
        signal.pidfd_send_signal = killpg
_assay_no_kill(PROTECTED)
del _assay_no_kill
'''

_HARNESS = r'''import os as _assay_os, sys as _assay_sys
_assay_token = _assay_sys.stdin.readline().strip()
_assay_sys.stdin.close()
_assay_fd = _assay_os.open(_assay_os.devnull, _assay_os.O_RDONLY)
_assay_os.dup2(_assay_fd, 0)
_assay_os.close(_assay_fd)
{guard}
_assay_src = {source!r}
_assay_globals = {{"__name__": "__main__", "__builtins__": __builtins__}}
exec(compile(_assay_src, "solution.py", "exec"), _assay_globals)
try:
    _assay_sys.stdout.flush()
except Exception:
    pass
_assay_os.write(1, ("\n" + _assay_token + "\n").encode())
'''


def _hidden_dirs() -> list[str]:
    home = os.path.expanduser("~")
    out = []
    if home not in ("/", "") and os.path.isdir(home):
        out.append(home)
    return out


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none). ``ASSAY_SANDBOX_LANDLOCK=0`` turns the layer off (tests)."""
    if sys.platform != "linux" or os.environ.get("ASSAY_SANDBOX_LANDLOCK") == "0":
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, int(abi))


@functools.lru_cache(maxsize=1)
def reachable_python() -> str | None:
    """An interpreter a throw-away uid can run without a mount namespace: ours if every directory up to it and its
    standard library is searchable by others, else a system Python of the same major.minor version."""
    import sysconfig

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if _can_exec_as_other(sys.executable) and _can_exec_as_other(sysconfig.get_paths()["stdlib"]):
        return sys.executable
    for d in ("/usr/bin", "/usr/local/bin", "/bin"):
        cand = os.path.join(d, f"python{version}")
        if os.path.isfile(cand) and _can_exec_as_other(cand):
            try:
                r = subprocess.run([cand, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                continue
            if r.returncode == 0 and r.stdout.strip() == version:
                return cand
    return None


def _sweep_uid(uid: int) -> None:
    """Remove whatever the run's uid created in the world-writable directories (the uid is unique to the run)."""
    for top in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                pass


def _can_exec_as_other(path: str) -> bool:
    """Whether a non-root uid could execute ``path`` (every parent directory searchable by others)."""
    p = os.path.realpath(path)
    while True:
        st = os.stat(p)
        if not st.st_mode & 0o001:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


def run_python(source: str, *, limits: Limits = Limits(), mode: str | None = None) -> SandboxResult:
    """Run ``source`` (solution + tests) in the sandbox; never raises for anything the code does."""
    mode = mode or isolation_mode()
    root = os.geteuid() == 0
    token = secrets.token_hex(16)
    uid = _SANDBOX_UID_BASE + secrets.randbelow(100_000) if root else None
    workdir = rundir = None
    if mode == "netns":
        cmd = _unshare_cmd(rootless=not root) + [sys.executable, "-I", "-c", _LAUNCHER]
        fs = "mountns" + ("+uid" if uid is not None else "")
    python_override = None
    lock = False
    if mode != "netns":
        workdir = tempfile.mkdtemp(prefix="assay-sandbox-")
        rundir = tempfile.mkdtemp(prefix="assay-harness-")
        if uid is not None:
            # without a mount namespace the interpreter must be reachable by the throw-away uid as it is: ours, or a
            # system Python of the same version (the harness needs only the standard library)
            python_override = reachable_python()
            if python_override is None:
                uid = None
        lock = landlock_abi() >= 1
        cmd = [sys.executable, "-I", "-c", _LAUNCHER]
        fs = "+".join(p for p in ("uid" if uid is not None else "", "landlock" if lock else "") if p) or "none"
    guard = _GUARD if mode == "socket-guard" else ""
    if mode != "netns" and uid is None and landlock_abi() < 6:  # nothing else stops signals to our processes
        guard += _KILL_GUARD.replace("PROTECTED", repr({os.getpid(), os.getppid(), 1}))
    program = _HARNESS.format(guard=guard, source=source)
    python = os.path.realpath(sys.executable)
    # the tree bind-mounted into the namespace: the base install (stdlib + libpython), which holds the binary
    prefix = sys.base_prefix if _inside(python, sys.base_prefix) else os.path.dirname(os.path.dirname(python))
    cfg = {"mountns": mode == "netns", "prefix": prefix, "python": python, "uid": uid, "workdir": workdir,
           "rundir": rundir, "hide": _hidden_dirs(), "tmpfs_mb": max(8, 4 * limits.file_mb),
           "limits": asdict(limits), "landlock": lock, "python_override": python_override}
    job = json.dumps({"cfg": cfg, "program": program, "token": token}).encode()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    t0 = time.monotonic()
    try:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, cwd=workdir or "/", start_new_session=True, close_fds=True)
        except OSError as e:
            return SandboxResult(False, "error", None, "", "", 0.0, mode, fs, detail=f"could not start sandbox: {e}")
        out, err, why = _collect(proc, job, limits)
        wall = time.monotonic() - t0
    finally:
        for d in (workdir, rundir):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        if mode != "netns" and uid is not None:
            _sweep_uid(uid)  # world-writable dirs are the one place a throw-away uid can write outside its own
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    rc = proc.returncode
    marker = "\n" + token + "\n"
    ok = why is None and rc == 0 and stdout.endswith(marker)
    if ok:
        stdout = stdout[: -len(marker)]
        return SandboxResult(True, "passed", rc, stdout, stderr, wall, mode, fs)
    stdout = stdout.replace(token, "<token>")
    if why == "timeout":
        status, detail = "timeout", f"killed after {limits.wall_s:g} s wall clock"
    elif why == "output_limit":
        status, detail = "output_limit", f"output over {limits.output_bytes} bytes"
    else:
        status, detail = "failed", _why_failed(rc, stderr)
    return SandboxResult(False, status, rc, stdout, stderr, wall, mode, fs, detail=detail)


def _inside(path: str, prefix: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(prefix) + os.sep)


def _why_failed(rc: int | None, stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("[sandbox] killed")]
    sig = None
    if rc is not None and rc < 0:
        sig = -rc
    elif rc is not None and rc > 128 and "[sandbox] killed by signal" in stderr:  # the launcher's report
        sig = rc - 128
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        sig = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed", "SIGXFSZ": "file size limit"}.get(name, name)
        return f"{sig} ({name})" + (f": {lines[-1][:200]}" if lines else "")
    if lines:
        return lines[-1][:300]
    if rc == 0:
        return "exited before the tests finished"
    return f"exit status {rc}"


def _collect(proc: subprocess.Popen, job: bytes, limits: Limits) -> tuple[bytes, bytes, str | None]:
    """Feed the job, read both pipes up to the cap, enforce the wall clock; kill the group on any breach."""
    deadline = time.monotonic() + limits.wall_s
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for f in bufs:
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    pending = memoryview(job)
    os.set_blocking(proc.stdin.fileno(), False)
    sel.register(proc.stdin, selectors.EVENT_WRITE)
    why = None
    total = 0
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                why = "timeout"
                break
            if proc.poll() is not None:
                # the child is gone; a leftover grandchild (fallback mode has no pid namespace) may hold the pipes
                exited_at = exited_at or now
                if now - exited_at > 0.5:
                    break
            for key, _ in sel.select(timeout=min(deadline - now, 0.1 if exited_at else 0.5)):
                f = key.fileobj
                if f is proc.stdin:
                    try:
                        n = os.write(f.fileno(), pending[:65536])
                        pending = pending[n:]
                    except BlockingIOError:
                        continue
                    except OSError:  # the child is gone or closed stdin: nothing more to feed
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(f)
                        f.close()
                    continue
                chunk = os.read(f.fileno(), 65536)
                if not chunk:
                    sel.unregister(f)
                    continue
                bufs[f] += chunk[: max(0, limits.output_bytes - total)]
                total += len(chunk)
                if total > limits.output_bytes:
                    why = "output_limit"
                    break
            if why:
                break
        if why is None:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                why = "timeout"
    finally:
        # always: in fallback mode this also reaps anything the code left running in its process group
        _kill_group(proc)
        # then wait (bounded) for EOF on the pipes: every process that held them is dead, so nothing the code
        # started outlives the call (in a pid namespace the kernel kills them all when its init dies)
        grace = time.monotonic() + 3.0
        while sel.get_map() and time.monotonic() < grace:
            for key, _ in sel.select(timeout=0.1):
                if key.fileobj is proc.stdin:
                    sel.unregister(key.fileobj)
                elif not os.read(key.fileobj.fileno(), 65536):
                    sel.unregister(key.fileobj)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        sel.close()
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), why


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
