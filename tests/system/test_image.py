"""The Docker image's steps, without Docker: what the Dockerfile copies, into an empty folder,
`pip install .` into a fresh virtual environment, `tubetrace --help`, and its CMD serving the
API against the test database (its /healthz, a console page and the API docs, which need the
package data). A COPY line missing for a package (cli/ once) fails here, not on a build host."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copy_sources(steps: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    copies = []
    for word, rest in steps:
        if word != "COPY":
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        copies.append((parts[:-1], parts[-1]))
    return copies


def test_dockerfile_runs_as_a_user_with_its_home_on_a_volume() -> None:
    steps = instructions(ROOT / "Dockerfile")
    words = [w for w, _ in steps]
    assert "USER" in words and dict(steps)["USER"] not in ("root", "0")
    assert words.index("USER") > words.index("RUN")  # installed as root, run as the user
    assert any(w == "ENV" and "TUBETRACE_HOME=/data" in r for w, r in steps)
    assert json.loads(dict(steps)["VOLUME"]) == ["/data"]
    assert "/healthz" in dict(steps)["HEALTHCHECK"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "tubetrace-home:/data" in compose and "/readyz" in compose
    # Compose's Neo4j has tubetrace's procedures: its image is built from their Dockerfile.
    assert "build: engine/server/procedures" in compose
    neo4j_steps = instructions(ROOT / "engine" / "server" / "procedures" / "Dockerfile")
    assert ("COPY", "tubetrace /src/tubetrace") in neo4j_steps
    assert any(
        w == "COPY" and r.endswith("/plugins/tubetrace-procedures.jar") for w, r in neo4j_steps
    )


@pytest.mark.slow
def test_image_steps_install_and_serve(
    tmp_path: Path, subprocess_env: dict[str, str], api_url: str
) -> None:
    steps = instructions(ROOT / "Dockerfile")
    context = tmp_path / "context"
    workdir = context / "app"
    workdir.mkdir(parents=True)
    for sources, dest in copy_sources(steps):
        for src in sources:
            origin = ROOT / src
            target = workdir / (Path(src).name if dest.endswith("/") else dest)
            if origin.is_dir():
                shutil.copytree(
                    origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    [run] = [r for w, r in steps if w == "RUN" and "pip install" in r]
    assert "pip install --no-cache-dir ." in run

    # A fresh environment; the dependencies are this one's (offline and fast: `--no-deps`),
    # reached through a path file, so that only the package itself is installed from the copy.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "outer-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-cache-dir", "--no-deps", "."],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]

    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    env |= {"TUBETRACE_WEBHOOKS": "0", "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    # Run from elsewhere: nothing may come from the repository's own folder.
    where = subprocess.run(
        [str(python), "-c", "import api, cli, engine; print(api.__file__, cli.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert str(ROOT) not in where and site in where, where
    # The managed server of an installed tubetrace builds its procedures from the package.
    assert Path(site, "engine", "server", "procedures", "tubetrace", "Exposure.java").is_file()
    helped = subprocess.run(
        [str(venv / "bin" / "tubetrace"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr[-2000:]

    [cmd] = [json.loads(r) for w, r in steps if w == "CMD"]
    port = free_port()
    cmd = [str(port) if c == "8000" else ("127.0.0.1" if c == "0.0.0.0" else c) for c in cmd]  # noqa: S104
    assert cmd[0] == "tubetrace"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / cmd[0]), *cmd[1:]],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.3)
        assert httpx.get(url + "/healthz").json() == httpx.get(api_url + "/healthz").json()
        # Package data: templates, the console's static files, the API docs' assets.
        assert httpx.get(url + "/console/login").status_code == 200
        assert httpx.get(url + "/console/static/console.css").status_code == 200
        assert httpx.get(url + "/docs").status_code == 200
        # The image's own health check command, against this port.
        [check] = [r for w, r in steps if w == "HEALTHCHECK"]
        probe = check.split(" CMD ", 1)[1].replace("8000", str(port))
        done = subprocess.run(
            probe,
            shell=True,
            env=env,
            cwd=tmp_path,
            timeout=30,
            check=False,  # noqa: S602
        )
        assert done.returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    assert any(ln.get("route") == "/healthz" for ln in lines), text[-2000:]
