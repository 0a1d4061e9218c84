"""Joining Ray: a local Ray of our own by default, an existing cluster by ``--address`` (or ``RAY_ADDRESS``).

Studies (:mod:`liser.studies.runner`) and the per-clip worker pools (:mod:`liser.workers`)
connect the same way, and an address that answers nothing fails in seconds, not minutes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from liser.errors import ClusterError


def join_with_token() -> None:
    """`ray start` turns on token authentication and writes ~/.ray/auth_token, but a driver
    joining a cluster only sends the token when ``RAY_AUTH_MODE=token``, read when Ray loads."""
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if "RAY_AUTH_MODE" not in os.environ and (token.exists() or os.environ.get("RAY_AUTH_TOKEN")):
        os.environ["RAY_AUTH_MODE"] = "token"


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds when nothing listens at a Ray address (``ray.init`` retries for minutes).

    ``auto`` and ``local`` are Ray's own keywords and pass; ``ray://host:port`` (Ray Client) and
    ``host:port`` (the GCS) are probed with one TCP connection.
    """
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address {address}: not HOST:PORT or ray://HOST:PORT (e.g. 10.0.0.5:6379 or ray://head:10001)")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"--address {address}: nothing answers at {host}:{port} within {timeout:g} s ({exc.strerror or exc}); "
            "is `ray start --head` running there, and is the port open?"
        ) from None


def init_ray(address: str | None, cpus: int | None) -> bool:
    """Start a local Ray (or join ``address``); False when this process already has one."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": True, "logging_level": "warning"}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(f"--address {address}: cannot join the Ray cluster ({str(exc).splitlines()[0]}); is `ray start --head` running there?") from exc
    else:
        # "local": a fresh Ray of our own, even when `ray start` left a cluster on this machine
        # (a bare ray.init() would silently join that one); --address / RAY_ADDRESS joins one.
        ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False, **kwargs)
    return True
