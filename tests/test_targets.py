"""Deployment targets, end to end: real exports of real backbones timed on LiteRT, OpenVINO,
ONNX Runtime and TensorFlow here, and on LiteRT over ssh to a real sshd started on localhost."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError
from harness.plan import Artifact, TargetSpec, parse_targets

pytestmark = pytest.mark.slow
BACKBONES = "mobilenet_v1_025,mobilenet_v2_035"
LOCAL = ["litert", "litert-int8", "openvino", "onnxruntime", "savedmodel"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real OpenSSH server on a free localhost port: temporary host key, one authorized key.

    Yields the ``ssh://`` target of this machine's LiteRT, run with this test's Python."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(binary) or not shutil.which("ssh-keygen"):
        pytest.skip("no sshd here (Debian's openssh-server; .ci/run installs it)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation, when run as root
    server = subprocess.Popen(
        [binary, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    user = getpass.getuser()
    probe = [
        "ssh",
        "-p",
        str(port),
        "-i",
        str(d / "client_key"),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ]
    probe += ["-o", f"UserKnownHostsFile={d / 'known_hosts'}", "-o", "StrictHostKeyChecking=accept-new"]
    for _ in range(50):
        if server.poll() is not None:
            pytest.skip(f"sshd could not start: {server.stdout.read().decode(errors='replace')[-300:]}")
        if subprocess.run([*probe, f"{user}@127.0.0.1", "true"], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        server.terminate()
        pytest.skip("sshd did not accept the test key in 10 s")
    query = f"python={sys.executable}&identity={d / 'client_key'}&known_hosts={d / 'known_hosts'}"
    yield f"ssh://{user}@127.0.0.1:{port}/litert?{query}"
    server.terminate()
    server.wait(timeout=10)


def _run(photos: Path, out: Path, targets: str) -> None:
    """``harness run`` as a user runs it: its own process each time."""
    done = subprocess.run(
        [
            sys.executable, "-m", "harness", "run", "--image-dir", str(photos), "--backbones", BACKBONES,
            "--cache-dir", str(out.parent / "cache"),
            "--results-dir", str(out), "--models-dir", str(out / "models"), "--steps", "200",
            "--timing-images", "32", "--timing-repeats", "3", "--latency-runs", "5",
            "--targets", targets, "--target-runs", "30", "--target-processes", "3",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def two_runs(medium_flowers, tmp_path_factory, sshd):
    """The same run twice on a warm cache: every local target and the ssh one.

    A first run fills the cache and the runtime probe, so the two differ in nothing."""
    base = tmp_path_factory.mktemp("targets")
    _run(medium_flowers, base / "warm-up", "none")
    records = []
    for i in range(2):
        _run(medium_flowers, base / "reports", ",".join([*LOCAL, sshd]))
        runs = sorted((base / "reports" / "runs").glob("*.json"))
        records.append(json.loads(runs[i].read_text()))
    return base / "reports", records


def test_every_backbone_on_every_target_has_latency_memory_size_and_accuracy(two_runs):
    _, (record, _) = two_runs
    rows = record["deployments"]
    assert {(r["backbone"], r["target"].split("?")[0].rsplit("/", 1)[-1]) for r in rows} >= {
        (b, t) for b in BACKBONES.split(",") for t in LOCAL
    }
    for row in rows:
        assert row["error"] is None, row
        assert 0 < row["latency_ms_p50_ci_low"] <= row["latency_ms_p50"] <= row["latency_ms_p50_ci_high"]
        assert row["latency_ms_p50"] <= row["latency_ms_p90"] <= row["latency_ms_p99"]
        assert row["n_calls"] >= 30 and row["processes"] == 3
        assert row["runtime_memory_mb"] < row["peak_memory_mb"] < 3000  # a fresh process, not the run's
        assert row["size_mb"] > 0 and 0 <= row["test_accuracy"] <= 1 and 0 <= row["mcnemar_p"] <= 1
        samples = record["details"][row["backbone"]]["targets"][f"{row['target']}@{row['threads']}"]
        assert sum(len(g) for g in samples["samples_ms"]) == row["n_calls"]
    by = {(r["backbone"], r["target"]): r for r in rows}
    for b in BACKBONES.split(","):
        # int8 files are smaller, the float files agree with the float model, the SavedModel decodes JPEG.
        assert by[(b, "litert-int8")]["size_mb"] < by[(b, "litert")]["size_mb"] / 2
        assert by[(b, "litert")]["agreement"] >= 0.97 and by[(b, "onnxruntime")]["agreement"] >= 0.97
        assert by[(b, "savedmodel")]["e2e_ms_p50"] > 0 and by[(b, "litert")]["e2e_ms_p50"] is None


def test_the_ssh_target_runs_the_same_file_on_the_remote_machine(two_runs):
    _, (record, _) = two_runs
    remote = [r for r in record["deployments"] if r["target"].startswith("ssh://")]
    assert len(remote) == 2 and all("@127.0.0.1:" in r["target"] and "?" not in r["target"] for r in remote)
    assert all(r["host"] == os.uname().nodename for r in remote)  # as the remote machine names itself
    for row in remote:
        local = next(
            r for r in record["deployments"] if r["backbone"] == row["backbone"] and r["target"] == "litert"
        )
        assert row["error"] is None and row["test_accuracy"] == local["test_accuracy"]
        assert row["size_mb"] == local["size_mb"] and row["latency_ms_p50"] > 0


def test_two_identical_runs_compare_within_noise(two_runs):
    results, (a, b) = two_runs
    out = CliRunner().invoke(cli, ["compare", a["run_id"], b["run_id"], "--results-dir", str(results)])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if " ms p50 " in line or "img/s" in line]
    assert len(lines) >= 2 * (len(LOCAL) + 2)
    for line in lines:
        low, high = (float(x) for x in line.split()[-3].split("-"))
        assert 0 < low <= high
    assert all(line.endswith("within noise") for line in lines), out.output


def test_recommend_on_a_target_respects_every_budget(two_runs):
    results, (_, record) = two_runs
    rows = [r for r in record["deployments"] if r["target"] == "litert-int8"]
    invoke = CliRunner().invoke
    out = invoke(
        cli,
        ["recommend", "--results-dir", str(results), "--target", "litert-int8", "--max-latency-ms", "1000"],
    )
    assert out.exit_code == 0, out.output
    assert out.output.startswith("on litert-int8") and " ms p50 " in out.output
    fastest = min(rows, key=lambda r: r["latency_ms_p50"])
    tiny = min(r["latency_ms_p50"] for r in rows) / 2
    out = invoke(
        cli,
        [
            "recommend",
            "--results-dir",
            str(results),
            "--target",
            "litert-int8",
            "--max-latency-ms",
            str(tiny),
        ],
    )
    assert out.exit_code == 2 and f"the fastest is {fastest['backbone']}" in out.output
    smallest = min(rows, key=lambda r: r["size_mb"])
    limit = str(smallest["size_mb"] + 1e-6)
    out = invoke(
        cli, ["recommend", "--results-dir", str(results), "--target", "litert-int8", "--max-size-mb", limit]
    )
    assert out.exit_code == 0 and out.output.startswith(f"on litert-int8 ({smallest['threads']} threads, ")
    assert f"): {smallest['backbone']}, " in out.output.splitlines()[0]


def test_the_report_names_the_target_and_its_latency(two_runs):
    results, (_, record) = two_runs
    html = (results / record["run_id"] / "report.html").read_text()
    assert "Ship on litert-int8 (" in html and " ms p50 (" in html
    assert "Each backbone on each target" in html and "one panel per deployment target" in html
    md = (results / record["run_id"] / "report.md").read_text()
    table = md.split("## Deployment")[1].split("## ")[0]
    assert table.count("mobilenet_v1_025") == len(LOCAL) + 1  # the latest run only, one row per target


def test_a_target_whose_runtime_is_missing_is_one_line_naming_the_extra():
    spec = TargetSpec("far", "litert", Artifact.TFLITE, modules=("no_such_runtime_xyz",), extra="deploy")
    with pytest.raises(
        HarnessError, match=r"target far needs no_such_runtime_xyz: pip install -e '\.\[deploy\]'"
    ):
        spec.check()
    with pytest.raises(HarnessError, match="unknown target 'tpu'"):
        parse_targets("litert,tpu")
    with pytest.raises(HarnessError, match="unknown option 'password'"):
        parse_targets("ssh://pi@board/litert?password=x")
    (target,) = parse_targets("ssh://pi@board:2222", (1,))
    assert (target.host.user, target.host.port, target.spec.name, target.threads) == ("pi", 2222, "litert", 1)
    assert [t.threads for t in parse_targets("litert,openvino", (1, 2))] == [1, 2, 1, 2]


def test_a_file_that_does_not_convert_fails_its_targets_not_the_backbone(
    unconvertible_backbone, small_flowers, tmp_path
):
    """LiteRT cannot convert this backbone: no model.tflite, no model.onnx. The run goes on;
    the SavedModel is measured, the other targets' rows say why not."""
    result = CliRunner().invoke(
        cli,
        ["run", "--image-dir", str(small_flowers), "--backbones", unconvertible_backbone.name,
         "--weights", "random", "--runtime", "tf", "--steps", "20", "--timing-images", "8",
         "--cache-dir", str(tmp_path / "c"), "--results-dir", str(tmp_path / "r"),
         "--models-dir", str(tmp_path / "m"),
         "--targets", "litert,onnxruntime,savedmodel", "--target-runs", "4", "--target-processes", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: TFLite conversion (none) failed" in result.output
    (record_file,) = (tmp_path / "r" / "runs").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["rows"][0]["error"] is None
    by = {r["target"]: r for r in record["deployments"]}
    assert by["litert"]["error"] == "no model.tflite was exported"
    assert by["onnxruntime"]["error"] == "no model.onnx was exported"
    saved = by["savedmodel"]
    assert saved["error"] is None and saved["latency_ms_p50"] > 0 and saved["n_calls"] == 4
    assert saved["test_accuracy"] is None  # random weights: speed only


def test_a_probe_that_dies_is_one_line_saying_how(tmp_path):
    """A runtime that crashes takes the process down without a word on stdout."""
    from harness.deploy.machines import Machine, outcome

    crash = "import os, signal, sys; print('loading', file=sys.stderr); os.kill(os.getpid(), signal.SIGSEGV)"
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True)
    with pytest.raises(HarnessError, match=r"printed no result \(killed by signal 11\): loading"):
        outcome(done)
    damaged = tmp_path / "model.tflite"
    damaged.write_bytes(b"TFL3" + bytes(64))
    np.save(tmp_path / "pixels.npy", np.zeros((1, 8, 8, 3), np.float32))
    out = json.loads(
        Machine().run(
            ["--runtime", "litert", "--model", str(damaged), "--pixels", str(tmp_path / "pixels.npy")]
        )
    )
    assert out["error"].startswith("ValueError")  # the script's own one line, for the row's error
