"""The real thing for end-to-end tests: a Kafka broker and the sidecar, each its own JVM.

Both run from the fat jar: ``saeguard broker --port 0`` (a real single-node KRaft broker that
creates saeguard's topics and prints its bootstrap when ready) and ``saeguard run --config FILE``
(ready when ``GET /health/ready`` answers 200). Output goes to log files in the test's temp dir.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import paths

JVM_OPTIONS = ["-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


class JavaProcess:
    """One ``java -jar saeguard.jar ...`` (or another ``jar``) with its output copied to ``log``; a line
    matching ``ready_pattern`` sets :attr:`ready_match`."""

    def __init__(self, args: List[str], log: Path, workdir: Path, ready_pattern: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, jar: Optional[Path] = None) -> None:
        self.log = log
        self._pattern = None if ready_pattern is None else re.compile(ready_pattern)
        self._ready = threading.Event()
        self.ready_match: Optional[re.Match] = None
        jar = jar or paths.jar()
        if not jar.is_file():
            raise FileNotFoundError("%s not found: build it with ./mvnw -DskipTests package (or set SAEGUARD_JAR)" % jar)
        cmd = [paths.java()] + JVM_OPTIONS + ["-Djava.io.tmpdir=%s" % workdir, "-jar", str(jar)] + args
        self.proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=None if env is None else {**os.environ, **env})
        self._reader = threading.Thread(target=self._copy_output, daemon=True)
        self._reader.start()

    def _copy_output(self) -> None:
        with open(self.log, "wb") as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()
                if self._pattern is not None and not self._ready.is_set():
                    m = self._pattern.search(line.decode("utf-8", "replace"))
                    if m:
                        self.ready_match = m
                        self._ready.set()
        self._ready.set()  # process ended: wake the waiter

    def wait_ready(self, timeout: float) -> re.Match:
        if not self._ready.wait(timeout) or self.ready_match is None:
            raise RuntimeError("%s not ready within %.0f s (exit %s); log tail:\n%s"
                               % (self.log.name, timeout, self.proc.poll(), self.tail()))
        return self.ready_match

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> JavaProcess:
    """Starts a broker that creates saeguard's default topics; ``wait_ready(t).group(1)`` is its bootstrap."""
    return JavaProcess(["broker", "--port", "0"], workdir / "broker.log", workdir,
                       ready_pattern=r"saeguard broker ready: bootstrap (\S+)")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return -1


def wait_http_ready(process: JavaProcess, port: int, timeout: float) -> None:
    """Polls /health/ready until 200; fails early, with the log, if the process exits."""
    deadline = time.monotonic() + timeout
    url = "http://127.0.0.1:%d/health/ready" % port
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError("sidecar exited with %s before it was ready; log tail:\n%s"
                               % (process.proc.returncode, process.tail()))
        if http_status(url) == 200:
            return
        time.sleep(0.2)
    raise RuntimeError("sidecar not ready within %.0f s; log tail:\n%s" % (timeout, process.tail()))
