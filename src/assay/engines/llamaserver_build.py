"""Build llama.cpp's own ``llama-server`` once, from the llama.cpp that the installed llama-cpp-python vendors.

Why from there: the same llama.cpp version that assay already runs (its AMX decision, its numerics), MIT-licensed,
and pip fetches it the ordinary way (``pip download llama-cpp-python==<installed> --no-deps --no-binary :all:``:
the sdist carries ``vendor/llama.cpp``). Only the ``llama-server`` target is built, static (one file to cache), for
this CPU (``GGML_NATIVE=ON``), so the binary is cached per (llama-cpp-python version, CPU flags) in
``$ASSAY_HOME/llama-server/<version>-<flags digest>/llama-server`` with a ``build.json`` saying how and how long.

``$ASSAY_LLAMA_SERVER`` names a binary to use instead (a build of your own, or the CI's cached one); it is used as is.

A build needs cmake, a C and a C++ compiler and make or ninja; a missing one is one line naming it. Two processes
that ask for the same build at once build it once (a file lock). Progress is printed as cmake reports it.

Example:
    assay llama-server-build                         # once; 4-6 min on 2 idle vCPUs
    python -m assay.engines.llamaserver_build        # the same, without the CLI (CI runs this)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ENV = "ASSAY_LLAMA_SERVER"
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_OPENSSL=OFF")
TARGET = "llama-server"
_PROGRESS = re.compile(r"^\[\s*(\d+)%\]")


class BuildError(Exception):
    """One line: what is missing or what failed, and the fix."""


def _prereq(msg: str) -> Exception:
    try:
        from assay.errors import PrerequisiteError

        return PrerequisiteError(msg)
    except ImportError:  # run before assay is installed (CI): plain exception
        return BuildError(msg)


def llama_cpp_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_flags() -> set[str]:
    try:
        from assay.engines.amx import cpu_flags

        return cpu_flags()
    except ImportError:
        return set()


def flags_digest(flags: set[str] | None = None) -> str:
    flags = _cpu_flags() if flags is None else flags
    return hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]


def _home() -> Path:
    try:
        from assay.engines import assay_home

        return assay_home()
    except ImportError:
        base = os.environ.get("ASSAY_HOME") or os.path.join(
            os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share"), "assay")
        return Path(base)


def cache_dir(version: str | None = None, flags: set[str] | None = None, home: Path | None = None) -> Path:
    """Where the binary for this llama-cpp-python version and these CPU flags lives."""
    version = version or llama_cpp_version() or "unknown"
    return (home or _home()) / "llama-server" / f"{version}-{flags_digest(flags)}"


def find_binary() -> Path | None:
    """``$ASSAY_LLAMA_SERVER``, else this machine's cached build; None when there is none yet."""
    env = os.environ.get(ENV)
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise _prereq(f"{ENV}={env} is not an executable file: unset it (assay builds its own) or fix the path")
        return p
    p = cache_dir() / TARGET
    return p if p.is_file() and os.access(p, os.X_OK) else None


def build_info(binary: Path) -> dict:
    """What ``build.json`` beside the binary says (empty for a binary assay did not build)."""
    try:
        return json.loads((Path(binary).parent / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def missing_tools() -> list[str]:
    """The build tools this machine lacks, as the apt package a person would install."""
    out = []
    if not shutil.which("cmake"):
        out.append("cmake")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        out.append("a C++ compiler (g++)")
    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        out.append("a C compiler (gcc)")
    if not (shutil.which("make") or shutil.which("ninja")):
        out.append("make")
    return out


def _fetch_sdist(version: str, dest: Path, log) -> Path:
    log(f"fetching the llama-cpp-python {version} sdist (for its vendor/llama.cpp) with pip ...")
    p = subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}", "--no-deps",
                        "--no-binary", ":all:", "-d", str(dest), "-q",
                        "--disable-pip-version-check"], capture_output=True, text=True)
    found = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        tail = (p.stderr or p.stdout or "").strip().splitlines()[-1:] or [""]
        raise _prereq(f"pip could not download the llama-cpp-python=={version} sdist ({tail[0][:160]}): it needs "
                      "PyPI; or pass --sdist PATH to a downloaded llama_cpp_python-*.tar.gz")
    return found[0]


def _extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Only ``vendor/llama.cpp`` of the sdist, into ``dest``; returns the llama.cpp source root."""
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        if not members:
            raise BuildError(f"{sdist.name} has no vendor/llama.cpp: not a llama-cpp-python sdist")
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, members=members, **kw)
    roots = [p for p in dest.glob("*/vendor/llama.cpp") if (p / "CMakeLists.txt").is_file()]
    if not roots:
        raise BuildError(f"{sdist.name}: vendor/llama.cpp has no CMakeLists.txt")
    return roots[0]


def _run_logged(cmd: list[str], log_file, log, what: str, progress: bool = False) -> None:
    """Run ``cmd``, its output to ``log_file``; cmake's ``[ NN%]`` shown every 10 points."""
    log_file.write(f"$ {' '.join(cmd)}\n")
    log_file.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    shown, tail = -10, []
    assert proc.stdout is not None
    for line in proc.stdout:
        log_file.write(line)
        tail = (tail + [line.rstrip()])[-6:]
        m = _PROGRESS.match(line) if progress else None
        if m and int(m.group(1)) >= shown + 10:
            shown = int(m.group(1)) // 10 * 10
            log(f"  building llama-server: {m.group(1)}%")
    rc = proc.wait()
    log_file.flush()
    if rc != 0:
        err = next((t for t in reversed(tail) if "error" in t.lower()), tail[-1] if tail else "")
        raise BuildError(f"{what} failed (exit {rc}): {err.strip()[:200]}; full log {log_file.name}")


def build(*, sdist: str | Path | None = None, jobs: int | None = None, force: bool = False, log=None,
          home: Path | None = None) -> Path:
    """Build (or find the cached) ``llama-server`` for this llama-cpp-python version and CPU; returns its path."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    version = llama_cpp_version()
    if version is None:
        raise _prereq("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]' (llama-server is "
                      "built from the llama.cpp it vendors)")
    target = cache_dir(version, home=home)
    binary = target / TARGET
    if binary.is_file() and not force:
        return binary
    missing = missing_tools()
    if missing:
        raise _prereq(f"cannot build llama-server: {', '.join(missing)} not found (Debian: apt-get install cmake "
                      "g++ make)")
    target.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits here, then finds the binary
        if binary.is_file() and not force:
            return binary
        t0 = time.monotonic()
        if not jobs:
            jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        log(f"building llama-server from llama-cpp-python {version}'s vendor/llama.cpp for this CPU "
            f"(once; 4-6 min on 2 idle cores; cached in {target}) ...")
        work = Path(tempfile.mkdtemp(prefix="llama-server-build-", dir=target))
        log_path = target / "build.log"
        try:
            with open(log_path, "w") as lf:
                src_tar = Path(sdist) if sdist else _fetch_sdist(version, work, log)
                if not src_tar.is_file():
                    raise _prereq(f"--sdist {src_tar}: no such file")
                root = _extract_llama_cpp(src_tar, work / "src")
                bdir = work / "build"
                gen = ["-G", "Ninja"] if shutil.which("ninja") and not shutil.which("make") else []
                t_cfg = time.monotonic()
                _run_logged(["cmake", "-S", str(root), "-B", str(bdir), *gen, *CMAKE_FLAGS], lf, log,
                            "cmake configure")
                t_build = time.monotonic()
                _run_logged(["cmake", "--build", str(bdir), "--target", TARGET, "-j", str(jobs)], lf, log,
                            "cmake --build", progress=True)
                built = next((p for p in (bdir / "bin" / TARGET, bdir / TARGET) if p.is_file()), None)
                if built is None:
                    raise BuildError(f"the build finished but made no {TARGET} binary; log {log_path}")
                tmp = target / f".{TARGET}.tmp"
                shutil.copy2(built, tmp)
                os.replace(tmp, binary)
            info = {"llama_cpp_python": version, "cpu_flags_digest": flags_digest(), "cmake_flags": list(CMAKE_FLAGS),
                    "target": TARGET, "jobs": jobs, "sdist": src_tar.name,
                    "configure_s": round(t_build - t_cfg, 1), "compile_s": round(time.monotonic() - t_build, 1),
                    "total_s": round(time.monotonic() - t0, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "compiler": _compiler()}
            (target / "build.json").write_text(json.dumps(info, indent=1))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"llama-server built in {time.monotonic() - t0:.0f} s: {binary}")
        return binary


def _compiler() -> str:
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def ensure(log=None) -> Path:
    """The binary to run: ``$ASSAY_LLAMA_SERVER``, the cached build, or a build now (first use)."""
    return find_binary() or build(log=log)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Build llama.cpp's llama-server for assay (cached per version and CPU).")
    ap.add_argument("--sdist", default=None, help="a llama_cpp_python-*.tar.gz instead of downloading it")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--force", action="store_true", help="build again even when cached")
    a = ap.parse_args(argv)
    try:
        path = build(sdist=a.sdist, jobs=a.jobs, force=a.force)
    except Exception as e:  # noqa: BLE001 - one line, whatever went wrong
        raise SystemExit(f"error: {e}") from None
    info = build_info(path)
    print(json.dumps({"binary": str(path), **info}))


if __name__ == "__main__":
    main()
