"""``liser ui``: the MLflow UI over the project's store, on loopback, lean and without telemetry.

``mlflow server`` by default starts many workers and a job runner (about 3 GiB); one
worker and no job execution is plenty for one user (about 0.5 GiB). Telemetry stays off
unless the user opts in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from liser.tracking import TAG, client, ensure_schema, resolve_tracking_uri

# MLflow 3 opens an experiment in its GenAI view unless told otherwise; a study's trials
# and fold runs live in the model-training view ("machine_learning").
TRAINING_VIEW = "workflowType=machine_learning"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_command(uri: str, artifact_root: Path | None, host: str, port: int, workers: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", str(workers)]
    if artifact_root is not None:
        cmd += ["--artifacts-destination", artifact_root.as_uri()]
    return cmd


def server_env(telemetry: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if not telemetry:
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["DO_NOT_TRACK"] = "true"
    return env


def start_server(tracking_uri: str | None = None, *, root: str | Path = ".", host: str = "127.0.0.1", port: int | None = None,
                 telemetry: bool = False, log_file: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``mlflow server`` on the store; returns the process and its URL (not yet waited for)."""
    uri, artifact_root = resolve_tracking_uri(tracking_uri, root)
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"{uri} is already a tracking server; open it in a browser")
    ensure_schema(uri)  # migrated here, under the lock, not by the server racing a study
    port = port or free_port(host)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(server_command(uri, artifact_root, host, port), env=server_env(telemetry), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://{host}:{port}"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Block until the server answers its health check; raise if it exits or takes too long."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {proc.returncode} before answering at {url}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server did not answer at {url} within {timeout:.0f} s")


def study_urls(tracking_uri: str | None, url: str, *, root: str | Path = ".") -> list[tuple[str, str]]:
    """(study, URL) for each liser study in the store: its runs table in the model-training
    view, where trials hold their fold runs nested under them. Newest study first."""
    uri, _ = resolve_tracking_uri(tracking_uri, root)
    exps = client(uri).search_experiments(filter_string=f"tags.`{TAG}study` != ''", order_by=["last_update_time DESC"], max_results=100)
    return [(e.name, f"{url}/#/experiments/{e.experiment_id}/runs?{TRAINING_VIEW}") for e in exps]


def stop_server(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the server (it stops cleanly), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
