"""Build and run the serving image where no image registry can be reached (developer tooling).

`serving/Dockerfile` builds from the upstream python image by default. Without a registry the pieces
come from elsewhere, and this module makes each of them:

- a private Docker engine: `start_engine(root)` runs `dockerd` with its own data root, exec root,
  pidfile and socket under `root` (`--iptables=false --bridge=none`, so containers use
  `--network host`), and `Engine.stop()` ends it by its PID and reports any process it left;
- the base image: `build_base()` makes a Debian root filesystem with
  `debootstrap --variant=minbase` (python3, python3-venv, python-is-python3, libgomp1; minbase
  already has `groupadd`/`useradd`), trims the apt caches and keeps it as a tarball under
  ~/.cache/gigmatch/docker-base/SUITE-KEY/ (KEY hashes the package list), so later builds only
  `docker import` it (`Engine.import_base()`);
- the wheels: `download_wheels()` runs `pip download` of serving/requirements.txt for the base's
  Python (cp311) and glibc (manylinux up to 2.36 on bookworm) into `wheels/` of the build context;
- the image: `Engine.build_image()` builds the Dockerfile with
  `--build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheels` and `--network host` (with
  `--bridge=none` BuildKit's RUN steps find no "bridge" network otherwise), with BuildKit when the
  client can drive it (Debian's 20.10 client, or any with buildx; about twice as fast here) and
  the legacy builder otherwise (a client >= 23 without buildx); $GIGMATCH_DOCKER_BUILDER=legacy|buildkit
  chooses. The client is the one installed beside dockerd, else the first `docker` on PATH.

    python -m devtools.docker_image base [--suite bookworm]   # build or reuse the cached base tarball
    python -m devtools.docker_image wheels [DIR]              # pip download the serving wheels (default wheels/)

With a Docker of your own and the base imported, the same build is
`docker build -f serving/Dockerfile --network host --build-arg PYTHON_IMAGE=gigmatch-base:bookworm
--build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheels .` from a context with bundle/ and
wheels/. `tests/test_docker_image.py` runs all of it end to end.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = Path("serving") / "Dockerfile"
REQUIREMENTS = ROOT / "serving" / "requirements.txt"
# What the Dockerfile copies from the context, besides bundle/ and wheels/.
CONTEXT_SOURCES = ("gigmatch", "serving")
WHEELS_DIR = "wheels"  # in the build context; the Dockerfile copies it to /src/wheels
BASE_TAG = "gigmatch-base"
# `python` on PATH for the Dockerfile (python-is-python3); venv with its bundled pip (python3-venv);
# the OpenMP runtime LightGBM's wheel links against (libgomp1: the Dockerfile installs it only when missing).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "libgomp1")
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# Only the base's own files: downloaded packages, package lists, manual pages and translations go.
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/man", "usr/share/locale")
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; containerd's sockets sit a little deeper than the root


@dataclass(frozen=True)
class Suite:
    """What a Debian release gives the image: the Python the wheels are for, and its glibc."""

    python: str
    glibc: tuple[int, int]


SUITES = {"bookworm": Suite(python="3.11", glibc=(2, 36))}
DEFAULT_SUITE = "bookworm"


class DockerImageError(RuntimeError):
    """A step of making or running the image failed; the message says which and why."""


class EngineError(DockerImageError):
    """The Docker engine could not start or answer; the message carries its log's tail."""


def default_cache_dir() -> Path:
    """Where base tarballs are kept: $GIGMATCH_DOCKER_BASE_CACHE, else ~/.cache/gigmatch/docker-base."""
    configured = os.environ.get("GIGMATCH_DOCKER_BASE_CACHE")
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "gigmatch" / "docker-base"


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"


# --- the base image ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseTarball:
    """A debootstrapped root filesystem kept as a tarball, and whether it came from the cache."""

    path: Path
    suite: str
    cached: bool
    seconds: float  # to build it, or to find it in the cache

    @property
    def tag(self) -> str:
        return f"{BASE_TAG}:{self.suite}"


def apt_mirror(
    sources: Sequence[Path] = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")),
) -> str | None:
    """The Debian mirror this machine's apt uses (the main archive, not the security one), if any is configured."""
    files: list[Path] = []
    for source in sources:
        files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list")) if source.is_dir() else [source]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":  # deb822 stanzas: Types, URIs, Suites, Signed-By...
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
                )
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                if "deb" in fields.get("types", "").split() and "debian-archive" in fields.get("signed-by", ""):
                    uris = [u for u in fields.get("uris", "").split() if "security" not in u]
                    if uris:
                        return uris[0]
        else:  # one-line format: deb [options] URI suite components
            for line in text.splitlines():
                words = [w for w in line.split() if not w.startswith("[") and not w.endswith("]")]
                if words[:1] == ["deb"] and len(words) >= 3 and "security" not in words[1] and "debian" in words[1]:
                    return words[1]
    return None


def _base_key(suite: str, packages: Sequence[str]) -> str:
    recipe = json.dumps({"suite": suite, "variant": "minbase", "packages": sorted(packages), "trimmed": TRIMMED})
    return f"{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:10]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time for a cache entry (parallel test workers, two terminals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_base(
    suite: str = DEFAULT_SUITE,
    cache_dir: Path | None = None,
    packages: Sequence[str] = BASE_PACKAGES,
    mirror: str | None = None,
    timeout: float = 1800,
) -> BaseTarball:
    """The base root filesystem as a tarball: from the cache when it is there, else debootstrapped (about a minute).

    Needs root and `debootstrap`. The mirror is `mirror`, else $GIGMATCH_DEBIAN_MIRROR, else the one this
    machine's apt uses, else debootstrap's default.
    """
    if suite not in SUITES:
        raise DockerImageError(f"no Python/glibc known for Debian {suite!r} (known: {', '.join(SUITES)})")
    started = time.monotonic()
    cache_dir = cache_dir or default_cache_dir()
    key = _base_key(suite, packages)
    entry = cache_dir / key
    tarball = entry / "rootfs.tar"
    with _locked(cache_dir / f".{key}.lock"):
        if tarball.is_file() and (entry / "base.json").is_file():
            return BaseTarball(tarball, suite, cached=True, seconds=time.monotonic() - started)
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise DockerImageError("debootstrap is not installed (apt-get install debootstrap)")
        mirror = mirror or os.environ.get("GIGMATCH_DEBIAN_MIRROR") or apt_mirror()
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
        try:
            rootfs, log = work / "rootfs", work / "debootstrap.log"
            command = [debootstrap, "--variant=minbase", f"--include={','.join(packages)}", suite, str(rootfs)]
            with log.open("wb") as out:
                done = subprocess.run(
                    [*command, *([mirror] if mirror else [])], stdout=out, stderr=subprocess.STDOUT, timeout=timeout
                )
            if done.returncode != 0:
                inner = tail(rootfs / "debootstrap" / "debootstrap.log", 15)
                raise DockerImageError(
                    f"debootstrap {suite} failed (exit {done.returncode}, mirror {mirror or 'default'}):\n"
                    f"{tail(log)}\n--- debootstrap/debootstrap.log ---\n{inner}"
                )
            for needed in ("usr/bin/python", "usr/sbin/groupadd", "usr/sbin/useradd", "usr/lib/*/libgomp.so.1"):
                if not any(rootfs.glob(needed)):
                    raise DockerImageError(f"the {suite} base lacks /{needed}")
            for trimmed in TRIMMED:
                for item in (rootfs / trimmed).glob("*"):
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item)
                    elif item.name != "lock":
                        item.unlink()
            entry.mkdir(parents=True, exist_ok=True)
            partial = entry / "rootfs.tar.partial"
            subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            seconds = time.monotonic() - started
            recipe = {"suite": suite, "packages": list(packages), "mirror": mirror, "seconds": round(seconds, 1)}
            (entry / "base.json").write_text(json.dumps(recipe, indent=2) + "\n")
            partial.replace(tarball)
            for stale in cache_dir.glob(f"{suite}-*"):  # the same suite's bases of other package lists
                if stale != entry and stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return BaseTarball(tarball, suite, cached=False, seconds=seconds)


# --- the wheels ----------------------------------------------------------------------------------------------------


def pip_command() -> list[str]:
    """An interpreter with pip: this one, else the one this virtual environment was made from, else python3."""
    candidates = [sys.executable, str(Path(sys.base_prefix) / "bin" / "python3"), shutil.which("python3") or ""]
    for python in dict.fromkeys(c for c in candidates if c and Path(c).exists()):
        if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "pip"]
    raise DockerImageError("no Python with pip found to download the wheels (tried: " + ", ".join(candidates) + ")")


def manylinux_platforms(glibc: tuple[int, int], arch: str = "x86_64") -> list[str]:
    """Every manylinux tag a system with this glibc runs (pip does not expand manylinux_2_X by itself)."""
    major, minor = glibc
    return [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)] + [f"manylinux2014_{arch}"]


def download_wheels(
    dest: Path, requirements: Path = REQUIREMENTS, suite: str = DEFAULT_SUITE, timeout: float = 1200
) -> list[Path]:
    """`pip download` the pinned serving requirements as wheels for the base's CPython and glibc into `dest`.

    Files already in `dest` are kept (pip skips them), so a rerun only checks the index.
    """
    target = SUITES[suite]
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in manylinux_platforms(target.glibc) for arg in ("--platform", p)]
    command = [
        *pip_command(), "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
        "--implementation", "cp", "--python-version", target.python, "--abi", f"cp{target.python.replace('.', '')}",
        *platforms, "--dest", str(dest), "--requirement", str(requirements),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise DockerImageError(f"pip download failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"[-4000:])
    return sorted(dest.glob("*.whl"))


def build_context(dest: Path, bundle: Path, repo: Path = ROOT) -> Path:
    """A build context for serving/Dockerfile: the code it copies and `bundle` as bundle/ (add the wheels to it)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", WHEELS_DIR)
    for source in CONTEXT_SOURCES:
        shutil.copytree(repo / source, dest / source, ignore=ignore)
    shutil.copytree(bundle, dest / "bundle")
    return dest


# --- the engine ----------------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Process:
    pid: int
    start: int  # clock ticks after boot: with the pid, names one process even if the pid is reused
    command: str

    def alive(self) -> bool:
        stat = _proc_stat(self.pid)
        return stat is not None and stat[2] == self.start and stat[1] not in ("Z", "X")


def processes_of(root: Path, pids: Sequence[int] = ()) -> list[Process]:
    """The live processes that belong to an engine rooted at `root`: those whose command line names the root
    (dockerd, containerd, the shims) or one of `pids`, and all their descendants (the containers' processes)."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None and stat[1] not in ("Z", "X"):
            table[int(entry.name)] = stat
    marker = f"{root}/"  # dockerd's, containerd's and the shims' command lines name paths under the root
    found = {pid for pid in table if pid in pids or marker in _cmdline(pid)}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _, _) in table.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    found.discard(os.getpid())
    return [Process(pid, table[pid][2], _cmdline(pid)) for pid in sorted(found)]


def mounts_under(root: Path) -> list[str]:
    """Mount points under `root` still mounted (overlay layers, the exec root's namespaces)."""
    prefix = str(root.resolve()) + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(prefix)]


@dataclass
class Engine:
    """A dockerd of our own: data, state, pidfile, socket and log under `root`."""

    root: Path
    process: subprocess.Popen[bytes]
    docker_cli: str
    builder: str = "legacy"  # or "buildkit": see pick_builder()
    seconds_to_start: float = 0.0
    seen: set[Process] = field(default_factory=set)  # every process of the engine seen while it ran

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def env(self) -> dict[str, str]:
        """The client's environment: this engine only, a private client config, the chosen builder."""
        env = {
            k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
        }
        return env | {
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.root / "client"),
            "DOCKER_BUILDKIT": "1" if self.builder == "buildkit" else "0",
        }

    def docker(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker client against this engine; raise with its output if it fails and `check`."""
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
            done = subprocess.run(
                [self.docker_cli, *args], env=self.env(), stdin=source, capture_output=True, timeout=timeout
            )
        result = subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr)[-6000:]
            raise DockerImageError(f"docker {' '.join(args[:2])} failed (exit {result.returncode}):\n{output}")
        return result

    def ping(self, timeout: float = 2.0) -> bool:
        """Whether the engine answers its API's /_ping on the socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.socket))
                connection = http.client.HTTPConnection("docker", timeout=timeout)
                connection.sock = sock
                connection.request("GET", "/_ping")
                return connection.getresponse().status == 200
        except OSError:
            return False

    def processes(self) -> list[Process]:
        """The engine's live processes (and remembers them, to check after stop() that none is left)."""
        found = processes_of(self.root, [self.pid] if self.process.poll() is None else [])
        self.seen |= set(found)
        return found

    def import_base(self, base: BaseTarball, timeout: float = 600) -> str:
        """`docker import` the base tarball with the environment a Dockerfile expects; returns its tag."""
        changes = [arg for k, v in BASE_ENV.items() for arg in ("--change", f"ENV {k}={v}")]
        self.docker("import", *changes, "--change", 'CMD ["python3"]', "-", base.tag, stdin=base.path, timeout=timeout)
        return base.tag

    def build_image(
        self, context: Path, tag: str, base_tag: str, build_args: Mapping[str, str] | None = None, timeout: float = 1800
    ) -> str:
        """Build serving/Dockerfile in `context` from `base_tag` with the context's wheels and no index; the log."""
        args = {"PYTHON_IMAGE": base_tag, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": f"/src/{WHEELS_DIR}"}
        args |= dict(build_args or {})
        flags = [arg for k, v in args.items() for arg in ("--build-arg", f"{k}={v}")]
        built = self.docker(
            "build", *(["--progress", "plain"] if self.builder == "buildkit" else []), "--network", "host",
            "--file", str(context / DOCKERFILE), *flags, "--tag", tag, str(context), timeout=timeout,
        )  # fmt: skip
        return built.stdout + built.stderr

    def stop(self, timeout: float = 60) -> list[Process]:
        """End dockerd by its PID (SIGTERM: it stops its containerd), then wait for all its processes to go.

        Returns the processes that were still there and had to be killed (by PID): none when all went well.
        """
        self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        deadline = time.monotonic() + 15
        while (left := [p for p in self.seen if p.alive()]) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted({p for p in self.seen if p.alive()} | set(processes_of(self.root)), key=lambda p: p.pid)
        for process in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        # dockerd leaves its bind mount of the host's network namespace (exec-root/netns/default) behind.
        for point in sorted(mounts_under(self.root / "exec" / "netns"), reverse=True):
            subprocess.run(["umount", point], capture_output=True)
        return left


def docker_client(dockerd: str) -> str | None:
    """The docker client installed with this dockerd (same directory, or ../bin), else the first on PATH."""
    here = Path(dockerd).resolve().parent
    for candidate in (here / "docker", here.parent / "bin" / "docker"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("docker")


def pick_builder(docker_cli: str) -> str:
    """ "buildkit" when this client drives the daemon's BuildKit (buildx, or a client before 23 that has it
    built in), else "legacy"; $GIGMATCH_DOCKER_BUILDER overrides."""
    chosen = os.environ.get("GIGMATCH_DOCKER_BUILDER")
    if chosen in ("legacy", "buildkit"):
        return chosen
    if subprocess.run([docker_cli, "buildx", "version"], capture_output=True).returncode == 0:
        return "buildkit"
    version = subprocess.run(
        [docker_cli, "--version"], capture_output=True, text=True
    ).stdout  # Docker version 20.10.24
    major = version.removeprefix("Docker version ").split(".")[0]
    return "buildkit" if major.isdigit() and int(major) < 23 else "legacy"


def start_engine(root: Path, timeout: float = 90, dockerd: str = "dockerd", docker_cli: str | None = None) -> Engine:
    """Start a private dockerd under `root` and wait until it answers; EngineError (with its log's tail) if not."""
    found_dockerd = shutil.which(dockerd)
    if docker_cli:
        found_cli = shutil.which(docker_cli)
    else:
        docker_cli, found_cli = "docker", docker_client(found_dockerd) if found_dockerd else shutil.which("docker")
    if found_dockerd is None or found_cli is None:
        missing = " and ".join(n for n, f in ((dockerd, found_dockerd), (docker_cli, found_cli)) if f is None)
        raise EngineError(f"{missing} not found on PATH: install the engine (apt-get install docker.io)")
    root = root.resolve()
    if len(str(root / "exec" / "containerd" / "containerd.sock.ttrpc")) > MAX_SOCKET_PATH:
        raise EngineError(f"engine root {root} is too long for its unix sockets: use a short one (e.g. under /tmp)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "client").mkdir(exist_ok=True)
    command = [
        found_dockerd,
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        "--iptables=false",
        "--bridge=none",
        "--ip-masq=false",
        "--userland-proxy=false",
        f"--config-file={root / 'daemon.json'}",
    ]
    (root / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json: this engine's settings only
    started = time.monotonic()
    with (root / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    engine = Engine(root, process, found_cli, builder=pick_builder(found_cli))
    deadline = started + timeout
    while not engine.ping():
        if process.poll() is not None:
            engine.stop()
            raise EngineError(f"dockerd exited with {process.returncode} at start:\n{tail(engine.log)}")
        if time.monotonic() > deadline:
            engine.stop()
            raise EngineError(f"dockerd did not answer on {engine.socket} within {timeout:.0f} s:\n{tail(engine.log)}")
        time.sleep(0.2)
    engine.seconds_to_start = time.monotonic() - started
    engine.processes()
    return engine


# --- command line --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.docker_image", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    base = commands.add_parser("base", help="build (or find in the cache) the debootstrap base tarball")
    base.add_argument("--suite", default=DEFAULT_SUITE, choices=sorted(SUITES))
    base.add_argument("--cache-dir", type=Path, default=None)
    wheels = commands.add_parser("wheels", help="pip download the serving wheels for the base")
    wheels.add_argument("dest", nargs="?", type=Path, default=ROOT / WHEELS_DIR)
    wheels.add_argument("--suite", default=DEFAULT_SUITE, choices=sorted(SUITES))
    args = parser.parse_args(argv)
    try:
        if args.command == "base":
            made = build_base(args.suite, args.cache_dir)
            how = "found in the cache" if made.cached else "built"
            print(f"{made.path} ({how} in {made.seconds:.1f} s; `docker import` it as {made.tag})")
        else:
            started = time.monotonic()
            found = download_wheels(args.dest, suite=args.suite)
            size = sum(w.stat().st_size for w in found) / 1e6
            print(f"{len(found)} wheels, {size:.0f} MB in {args.dest} ({time.monotonic() - started:.1f} s)")
    except DockerImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
