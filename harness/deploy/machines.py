"""Where the timing script (:mod:`harness.deploy.probe`) runs: here, or on a machine over ssh."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from pathlib import Path

from harness.deploy import probe
from harness.errors import HarnessError
from harness.plan import SshHost

PROBE_TIMEOUT_S = 900  # one fresh process: import, load, warm-up, calls, the test images


class Machine:
    """Where probes run: this machine, in fresh ``sys.executable`` processes."""

    name = platform.node()

    def place(self, path: Path) -> str:
        return str(path)

    def run(self, args: list[str]) -> str:
        command = [sys.executable, probe.__file__, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        return outcome(done)

    def close(self) -> None:
        pass


def outcome(done: subprocess.CompletedProcess[str]) -> str:
    """The probe's stdout, or one line saying how it died when it printed no result (a runtime
    that crashes, say, on a damaged file, takes the process down without a word on stdout)."""
    if any(line.startswith("{") for line in done.stdout.splitlines()):
        return done.stdout
    how = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
    raise HarnessError(f"the timing script printed no result ({how}): {last_line(done.stderr)}")


class Remote(Machine):
    """A machine over ssh: files are copied into a temporary folder there, removed at the end."""

    def __init__(self, host: SshHost) -> None:
        self.host = host
        self.name = host.host
        self.remote = self._ssh("mktemp -d").stdout.strip()
        if not self.remote.startswith("/"):
            raise HarnessError(f"{host.destination}: mktemp -d printed {self.remote!r}")
        self._copy(Path(probe.__file__), "probe.py")

    def _ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        args = ["ssh", *self.host.options(), self.host.destination, command]
        done = subprocess.run(args, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        if done.returncode == 255:  # ssh's own failure, not the command's
            raise HarnessError(f"ssh {self.host.destination}: {last_line(done.stderr)}")
        return done

    def _copy(self, path: Path, name: str) -> str:
        """Send a file or folder as a tar stream through ssh: no sftp or scp needed on the board."""
        import tarfile

        where = f"{self.remote}/{name}"
        args = [
            "ssh",
            *self.host.options(),
            self.host.destination,
            f"tar -C {shlex.quote(self.remote)} -xf -",
        ]
        with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
            assert tar.stdin is not None
            try:
                with tarfile.open(fileobj=tar.stdin, mode="w|") as stream:
                    stream.add(str(path), arcname=name)
                tar.stdin.close()
            except BrokenPipeError:
                pass  # the remote side failed: its message is on stderr
            error = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            if tar.wait(timeout=PROBE_TIMEOUT_S) != 0:
                raise HarnessError(f"copying {path.name} to {self.host.destination}: {last_line(error)}")
        return where

    def place(self, path: Path) -> str:
        return self._copy(path, path.name)

    def run(self, args: list[str]) -> str:
        command = " ".join(shlex.quote(a) for a in [self.host.python, f"{self.remote}/probe.py", *args])
        return outcome(self._ssh(command))

    def close(self) -> None:
        self._ssh(f"rm -rf {shlex.quote(self.remote)}")


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed"
