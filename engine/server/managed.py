"""The managed local Neo4j 5.26 Community server, assembled from Maven Central.

No distribution tarball is needed: Maven resolves the server, Browser and APOC jars named in
`pom.xml` beside this file; the resolved classpath is cached, so the second start downloads
nothing. State (conf, data, logs, password, ports) lives under `TUBETRACE_HOME/neo4j`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs

from engine.errors import ServerError
from engine.settings import Settings, mebibytes

log = logging.getLogger("tubetrace.server")

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
PLUGIN_JARS = ("apoc-core-", "apoc-common-")
# tubetrace's own procedures (procedures/tubetrace/*.java: the exposure rings), compiled once
# against the server's jars and cached by the hash of their sources and of that classpath.
PROCEDURES_SRC = Path(__file__).parent / "procedures"
PROCEDURES_JAR = "tubetrace-procedures-"
PROCEDURES = ("tubetrace.clusters", "tubetrace.exposure")  # what /readyz checks the server has
BROWSER_ASSETS = Path(__file__).parent / "browser"
BOLT_KEEP_ALIVE_S = 1  # the server sends a chunk at least this often on a busy connection
BOLT_KEEP_ALIVE_PROBES = 3  # silent for keep-alive x probes seconds: the driver gives up

JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
)


@dataclass(frozen=True)
class ServerInfo:
    running: bool
    pid: int | None
    bolt_uri: str
    browser_url: str
    home: Path
    log_path: Path

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return (
            f"Neo4j is {state}\n  Bolt:    {self.bolt_uri}\n  Browser: {self.browser_url}\n"
            f"  Home:    {self.home}\n  Log:     {self.log_path}"
        )


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999): a port from that range can be
    handed to some client socket later, and a connect to it can even connect to itself."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if _can_bind(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    """Whether another program listens there (a bind test: a connect test can self-connect)."""
    return not _can_bind(port)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.split(")")[-1].split()[0] != "Z"


def procedures_key(jars: list[str]) -> str:
    """The build's key: a hash of the sources and of the server's jar names (their versions)."""
    digest = hashlib.sha256(os.pathsep.join(Path(j).name for j in jars).encode())
    for source in sorted(PROCEDURES_SRC.rglob("*.java")):
        digest.update(source.relative_to(PROCEDURES_SRC).as_posix().encode() + source.read_bytes())
    return digest.hexdigest()[:16]


def half(size: str) -> str:
    """Half of a memory size as the JVM writes them ("2g", "512m", "2048M"), in MiB."""
    mib = mebibytes(size)
    if mib is None:
        raise ServerError(f"'{size}' is not a memory size (as 2g or 512m)")
    return f"{max(1, int(mib / 2))}m"


def procedures_jar_name(jars: list[str]) -> str:
    return f"{PROCEDURES_JAR}{procedures_key(jars)}.jar"


def valid_jar(path: Path) -> bool:
    """A whole jar with the procedures' classes (not an empty or cut-short file: Neo4j refuses
    to start with a plugin it cannot read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            return zf.testzip() is None and all(
                f"{src.relative_to(PROCEDURES_SRC).with_suffix('.class').as_posix()}" in names
                for src in PROCEDURES_SRC.rglob("*.java")
            )
    except (OSError, zipfile.BadZipFile):
        return False


def cached_folder(root: Path, whole: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """A folder of the user cache made once: `build` fills a temporary sibling, renamed into
    place. Two starts at once each build their own and rename it: the first stays, the other
    is dropped. A folder that is not `whole` (a build cut short) is built again."""
    if whole(root):
        return root
    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise ServerError(f"cannot write into the cache folder {tmp.parent}: {exc}") from exc
    try:
        build(tmp)
        if root.exists() and not whole(root):
            shutil.rmtree(root, ignore_errors=True)  # a broken build: replace it
        with contextlib.suppress(OSError):  # another start renamed its own (same) build first
            tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def procedures_jar(jars: list[str], key: str | None = None) -> Path:
    """tubetrace's procedures as a plugin jar: compiled by `javac` against the server's own
    jars the first time, then taken from the cache (`cached_folder`). `key`:
    procedures_key(jars), when the caller has it."""
    key = key or procedures_key(jars)
    root = Path(platformdirs.user_cache_dir("tubetrace")) / "procedures" / key
    name = f"{PROCEDURES_JAR}{key}.jar"
    if valid_jar(root / name):
        return root / name
    javac = shutil.which("javac")
    if javac is None:
        raise ServerError(
            "javac is not installed; it is needed once to build tubetrace's procedures for "
            "Neo4j (apt-get install openjdk-17-jdk-headless)."
        )

    def build(tmp: Path) -> None:
        classes = tmp / "classes"
        proc = subprocess.run(
            [javac, "--release", "17", "-nowarn", "-encoding", "UTF-8", "-d", str(classes)]
            + ["-cp", os.pathsep.join(jars), *map(str, sorted(PROCEDURES_SRC.rglob("*.java")))],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ServerError(
                f"javac could not build tubetrace's procedures:\n{proc.stderr[-1500:]}"
            )
        with zipfile.ZipFile(tmp / name, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            for item in sorted(classes.rglob("*.class")):
                zf.write(item, item.relative_to(classes).as_posix())
        shutil.rmtree(classes)

    jar = cached_folder(root, lambda folder: valid_jar(folder / name), build) / name
    if not valid_jar(jar):
        raise ServerError(f"tubetrace's procedures were built but {jar} is not a whole jar")
    return jar


def pom_path() -> Path:
    return Path(str(resources.files("engine.server") / "pom.xml"))


class ManagedServer:
    """One Neo4j server per `TUBETRACE_HOME`; two homes run side by side on their own ports."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "neo4j"
        self.conf_dir = self.root / "conf"
        self.data_dir = self.root / "data"
        self.logs_dir = self.root / "logs"
        self.plugins_dir = self.root / "plugins"
        self.import_dir = self.root / "import"
        self.run_dir = self.root / "run"
        self.state_file = self.root / "state.json"
        self.password_file = self.root / "password"
        self.pid_file = self.run_dir / "neo4j.pid"
        self.log_path = self.logs_dir / "neo4j.log"

    # -- provisioning -------------------------------------------------------------------------

    def classpath(self) -> list[str]:
        """The server's jars, resolved once by Maven and cached by the pom's hash."""
        pom = pom_path()
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
        cache = Path(platformdirs.user_cache_dir("tubetrace")) / f"neo4j-{digest}" / "classpath"
        if cache.exists():
            jars = cache.read_text().strip().split(os.pathsep)
            if jars and all(Path(j).is_file() for j in jars):
                return jars
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServerError(
                "Maven (mvn) is not installed; it is needed once to fetch the Neo4j jars "
                "(apt-get install maven), or set NEO4J_URI to use another server."
            )
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        proc = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={tmp}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not tmp.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise ServerError(f"Maven could not resolve the Neo4j jars from {pom}:\n{tail}")
        tmp.replace(cache)
        return cache.read_text().strip().split(os.pathsep)

    def browser_root(self, jars: list[str]) -> tuple[Path, list[str]]:
        """Neo4j Browser's static files plus the project's style and guide, in one classpath
        folder placed before the server's jars (Browser serves `browser/` from the classpath)."""
        browser_jar = next((j for j in jars if Path(j).name.startswith("neo4j-browser-")), None)
        if browser_jar is None:
            return self.root, jars
        assets = sorted(BROWSER_ASSETS.glob("*"))
        digest = hashlib.sha256(Path(browser_jar).name.encode())
        for asset in assets:
            digest.update(asset.name.encode() + asset.read_bytes())
        root = Path(platformdirs.user_cache_dir("tubetrace")) / "browser" / digest.hexdigest()[:16]

        def build(tmp: Path) -> None:
            with zipfile.ZipFile(browser_jar) as zf:
                zf.extractall(tmp, [n for n in zf.namelist() if n.startswith("browser/")])
            (tmp / "browser" / "tubetrace").mkdir(parents=True, exist_ok=True)
            for asset in assets:
                shutil.copy2(asset, tmp / "browser" / "tubetrace" / asset.name)

        guide = Path("browser", "tubetrace", "guide.html")
        cached_folder(root, lambda folder: (folder / guide).exists(), build)
        return root, [str(root)] + [j for j in jars if j != browser_jar]

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ServerError(
                "Java is not installed; Neo4j 5.26 needs Java 17 or 21 "
                "(apt-get install openjdk-17-jre-headless), or set NEO4J_URI."
            )
        return java

    def _state(self) -> dict[str, int]:
        if self.state_file.exists():
            data: dict[str, int] = json.loads(self.state_file.read_text())
            return data
        state = {"bolt_port": _free_port(), "http_port": _free_port()}
        while state["http_port"] == state["bolt_port"]:
            state["http_port"] = _free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state))
        return state

    def password(self) -> str:
        if not self.password_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write("tt" + secrets.token_urlsafe(24))  # never a leading '-'
        return self.password_file.read_text().strip()

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self._state()['bolt_port']}"

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self._state()['http_port']}/browser/"

    def _write_conf(self) -> None:
        st = self._state()
        lines = [
            "# Written by tubetrace on every start; edit TUBETRACE_* settings instead.",
            "server.default_listen_address=127.0.0.1",
            "server.default_advertised_address=127.0.0.1",
            f"server.bolt.listen_address=127.0.0.1:{st['bolt_port']}",
            f"server.bolt.advertised_address=127.0.0.1:{st['bolt_port']}",
            f"server.http.listen_address=127.0.0.1:{st['http_port']}",
            f"server.http.advertised_address=127.0.0.1:{st['http_port']}",
            "server.https.enabled=false",
            "dbms.security.auth_enabled=true",
            f"server.memory.heap.initial_size={self.settings.heap_size}",
            f"server.memory.heap.max_size={self.settings.heap_size}",
            f"server.memory.pagecache.size={self.settings.pagecache_size}",
            # One transaction (a query, with what tubetrace's procedures hold) may take this
            # much of the heap; past it Neo4j refuses it: an exposure of a whole city must not
            # fill the heap that every other request shares.
            f"db.memory.transaction.max={self.settings.tx_memory or half(self.settings.heap_size)}",
            f"server.directories.data={self.data_dir}",
            f"server.directories.logs={self.logs_dir}",
            f"server.directories.plugins={self.plugins_dir}",
            f"server.directories.import={self.import_dir}",
            f"server.directories.run={self.run_dir}",
            "dbms.security.procedures.unrestricted=apoc.*",
            "browser.remote_content_hostname_whitelist=127.0.0.1,localhost",
            f"browser.post_connect_cmd=style {self.browser_url}tubetrace/style.grass; "
            f"play {self.browser_url}tubetrace/guide.html",
            "dbms.usage_report.enabled=false",
            # Queries are parameterised; parameters carry ID numbers and phones: never log them.
            "db.logs.query.parameter_logging_enabled=false",
            "client.allow_telemetry=false",
            # The admin tool does not know the server's browser.* settings.
            "server.config.strict_validation.enabled=false",
            # Backups are dumps (Community has no incremental backup from the logs), so the
            # logs serve crash recovery only: a size bound, not a day of writes. A campaign's
            # online day wrote ~6.5 KB of log per registration (docs/campaign.md): a day's logs
            # of a 26 M round would be ~170 GB.
            "db.tx_log.rotation.retention_policy=1G size",
            # A frozen server (stopped process, full disk, long GC) is an outage, not a hang:
            # the server promises a chunk (a NOOP while a query runs) every keep-alive period,
            # and hints drivers to treat a connection silent for keep_alive x probes as dead.
            f"server.bolt.connection_keep_alive={BOLT_KEEP_ALIVE_S}s",
            f"server.bolt.connection_keep_alive_probes={BOLT_KEEP_ALIVE_PROBES}",
            "server.bolt.connection_keep_alive_for_requests=ALL",
            f"server.bolt.connection_keep_alive_streaming_scheduling_interval={BOLT_KEEP_ALIVE_S}s",
            # No cross-origin use of the HTTP port: a page from elsewhere gets no CORS grant
            # (Browser itself is served from this same origin and needs none).
            f"dbms.security.http_access_control_allow_origin=http://127.0.0.1:{st['http_port']}",
        ]
        extra = self.conf_dir / "extra.conf"
        if extra.exists():
            lines.append(extra.read_text())
        (self.conf_dir / "neo4j.conf").write_text("\n".join(lines) + "\n")

    def _make_private(self) -> None:
        """The data, transaction logs and logs hold full ID numbers: only this user may read
        them (home 0700, files 0600); the server and admin tool run with umask 077."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings.home.chmod(0o700)
        for folder, _dirs, files in os.walk(self.root):
            with contextlib.suppress(FileNotFoundError):
                Path(folder).chmod(0o700)
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        path.chmod(0o600)

    def _prepare(self) -> list[str]:
        for d in (
            self.conf_dir,
            self.data_dir,
            self.logs_dir,
            self.plugins_dir,
            self.import_dir,
            self.run_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        jars = self.classpath()
        for jar in jars:
            name = Path(jar).name
            if name.startswith(PLUGIN_JARS) and not (self.plugins_dir / name).exists():
                shutil.copy2(jar, self.plugins_dir / name)
        self._write_conf()
        classpath = self.browser_root(jars)[1]
        self._make_private()
        return classpath

    def _install_procedures(self, jars: list[str]) -> None:
        """tubetrace's procedures into plugins/: this build only, whole (a jar Neo4j cannot
        read stops it from starting). A build that fails is logged, also in
        logs/procedures.log, and the server starts without them (or with a whole jar of this
        same build already in plugins/): exposure then answers an error and /readyz names
        them missing; every other feature works, and a restore or bulk import, which restart
        the server, never leave it down."""
        key = procedures_key(jars)  # reads and hashes every source: once a start
        name = f"{PROCEDURES_JAR}{key}.jar"
        installed = self.plugins_dir / name
        try:
            own: Path | None = procedures_jar(jars, key)
        except (ServerError, OSError) as exc:
            own = None
            log.error("starting Neo4j without a new build of tubetrace's procedures: %s", exc)
            with contextlib.suppress(OSError):
                self.logs_dir.mkdir(parents=True, exist_ok=True)
                with (self.logs_dir / "procedures.log").open("a", encoding="utf-8") as fh:
                    fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} build failed: {exc}\n")
        for old in self.plugins_dir.glob(f"{PROCEDURES_JAR}*.jar"):
            if old.name != name or not valid_jar(old):
                old.unlink(missing_ok=True)
        if own is None:
            return
        if installed.exists() and installed.read_bytes() == own.read_bytes():
            return
        try:
            tmp = self.plugins_dir / f".{name}.tmp{os.getpid()}"
            shutil.copy2(own, tmp)
            os.replace(tmp, installed)  # never a half-copied jar by its name
        except OSError as exc:
            log.error("could not install tubetrace's procedures into %s: %s", installed, exc)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.root)
        env["NEO4J_CONF"] = str(self.conf_dir)
        return env

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `neo4j-admin` (the server's own admin tool) against this home."""
        jars = self._prepare()
        argfile = self.run_dir / "admin.args"
        argfile.write_text(f"-cp {os.pathsep.join(jars)}\n")
        argfile.chmod(0o600)
        proc = subprocess.run(
            [self._java(), "-Xmx4g", f"@{argfile}", ADMIN_TOOL, *args],
            capture_output=True,
            text=True,
            env=self._env(),
            umask=0o077,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ServerError(
                f"neo4j-admin {' '.join(args[:2])} failed: "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        return proc

    # -- lifecycle ----------------------------------------------------------------------------

    def pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> ServerInfo:
        pid = self.pid()
        return ServerInfo(
            pid is not None, pid, self.bolt_uri, self.browser_url, self.root, self.log_path
        )

    def start(self) -> ServerInfo:
        """Start the server (or find it running) and return once Bolt answers."""
        if self.pid() is not None:
            self._wait_for_bolt(self.pid())
            return self.status()
        java = self._java()
        jars = self._prepare()
        self._install_procedures(self.classpath())
        st = self._state()
        for port in (st["bolt_port"], st["http_port"]):
            # A JVM that was just killed can hold its sockets for a moment after its main
            # thread is a zombie (the other threads still exit): give it a few seconds.
            deadline = time.monotonic() + (15 if self.pid_file.exists() else 0)
            while _port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.25)
            if _port_in_use(port):
                raise ServerError(
                    f"Port {port} on 127.0.0.1 is already in use by another program; "
                    f"free it or delete {self.state_file} to choose new ports. Log: {self.log_path}"
                )
        if not (self.data_dir / "dbms" / "auth.ini").exists() and not any(
            (self.data_dir / "databases").glob("system")
        ):
            self.admin("dbms", "set-initial-password", self.password())
        argfile = self.run_dir / "java.args"
        heap = self.settings.heap_size
        argfile.write_text(
            "\n".join([f"-Xms{heap}", f"-Xmx{heap}", *JVM_FLAGS, f"-cp {os.pathsep.join(jars)}"])
            + "\n"
        )
        console = (self.logs_dir / "console.log").open("ab")
        proc = subprocess.Popen(
            [
                java,
                f"@{argfile}",
                ENTRY_POINT,
                f"--home-dir={self.root}",
                f"--config-dir={self.conf_dir}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            env=self._env(),
            umask=0o077,
            start_new_session=True,
            cwd=self.root,
        )
        console.close()
        self.pid_file.write_text(str(proc.pid))
        self._make_private()  # the argument file, console log and pid file written above
        self._wait_for_bolt(proc.pid, proc)
        return self.status()

    def _wait_for_bolt(self, pid: int | None, proc: subprocess.Popen[bytes] | None = None) -> None:
        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, ServiceUnavailable

        deadline = time.monotonic() + self.settings.start_timeout_s
        port = self._state()["bolt_port"]
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerError(
                    f"Neo4j exited during start (code {proc.returncode}): "
                    f"{self._last_error()} Log: {self.log_path}"
                )
            if pid is not None and not _pid_alive(pid):
                raise ServerError(
                    f"Neo4j is not running: {self._last_error()} Log: {self.log_path}"
                )
            if _port_in_use(port):  # something listens: is it our Bolt yet?
                try:
                    with GraphDatabase.driver(
                        self.bolt_uri, auth=("neo4j", self.password())
                    ) as drv:
                        drv.verify_connectivity()
                    return
                except AuthError as exc:
                    raise ServerError(
                        f"Neo4j answered on {self.bolt_uri} but refused the password in "
                        f"{self.password_file}: {exc.message}"
                    ) from exc
                except ServiceUnavailable:
                    pass
            time.sleep(0.5)
        raise ServerError(
            f"Neo4j did not answer on {self.bolt_uri} within {self.settings.start_timeout_s:.0f}s. "
            f"Log: {self.log_path}"
        )

    def _last_error(self) -> str:
        for path in (self.log_path, self.logs_dir / "console.log"):
            if path.exists():
                lines = [
                    ln
                    for ln in path.read_text(errors="replace").splitlines()
                    if "ERROR" in ln or "Caused by" in ln or "Exception" in ln
                ]
                if lines:
                    return lines[-1].strip()[:400]
        return "no error was logged."

    def stop(self, timeout_s: float = 60.0) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.3)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """kill -9 the JVM: used by the fault tests. Returns once its ports are free."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
            st = self._state()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                _port_in_use(p) for p in (st["bolt_port"], st["http_port"])
            ):
                time.sleep(0.1)
