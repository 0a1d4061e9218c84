"""A real headless Chromium driven over the DevTools protocol: load a page, record every
network request and JS error, evaluate a check, take a screenshot.

Debian's `chromium` package; `.ci/run` installs it. Without it the browser tests skip,
except under CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]


def chromium_or_skip() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


@dataclass
class PageLoad:
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions and console errors
    failed_loads: list[str] = field(default_factory=list)  # resources that did not load (e.g. a 404)
    value: object = None  # the final value of the check expression
    screenshot: Path | None = None


class Browser:
    """One Chromium process; :meth:`load` opens a fresh tab per page."""

    def __init__(self, size=(1400, 2000)):
        self.exe = chromium_or_skip()
        self.profile = tempfile.mkdtemp(prefix="liser-chromium-")
        self.proc = subprocess.Popen(
            [self.exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        self.port = int(port_file.read_text().split()[0])
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _endpoint(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        return json.loads(urllib.request.urlopen(req, timeout=30).read())

    def load(self, url: str, check: str, *, until=bool, timeout: float = 60, screenshot: Path | None = None) -> PageLoad:
        """Open ``url``; evaluate the JS expression ``check`` until ``until(value)`` or timeout."""
        import websocket  # websocket-client

        target = self._endpoint("/json/new?about:blank", method="PUT")
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        result = PageLoad(url)
        pending: dict[int, dict] = {}

        def send(method: str, **params) -> int:
            mid = next(self._ids)
            ws.send(json.dumps({"id": mid, "method": method, "params": params}))
            return mid

        def pump(until_id: int | None = None, seconds: float = 0.0) -> dict | None:
            end = time.time() + (timeout if until_id else seconds)
            while time.time() < end:
                ws.settimeout(max(0.05, min(1.0, end - time.time())))
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                method = msg.get("method")
                if method == "Network.requestWillBeSent":
                    result.requests.append(msg["params"]["request"]["url"])
                elif method == "Runtime.exceptionThrown":
                    d = msg["params"]["exceptionDetails"]
                    result.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
                elif method == "Runtime.consoleAPICalled" and msg["params"]["type"] == "error":
                    result.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in msg["params"]["args"]))
                elif method == "Log.entryAdded" and msg["params"]["entry"]["level"] == "error":
                    entry = msg["params"]["entry"]
                    line = f"{entry.get('url', '')}: {entry['text']}"
                    (result.failed_loads if entry.get("source") == "network" else result.errors).append(line)
                if "id" in msg:
                    pending[msg["id"]] = msg
                    if msg["id"] == until_id:
                        return msg
            if until_id:
                raise TimeoutError(f"chromium did not answer within {timeout} s")
            return None

        try:
            for domain in ("Network", "Runtime", "Log", "Page"):
                pump(send(f"{domain}.enable"))
            pump(send("Page.navigate", url=url))
            deadline = time.time() + timeout
            while True:
                reply = pump(send("Runtime.evaluate", expression=check, returnByValue=True))
                result.value = reply.get("result", {}).get("result", {}).get("value")
                if until(result.value) or time.time() > deadline:
                    break
                pump(seconds=0.5)
            pump(seconds=1.0)  # late requests and errors
            if screenshot is not None:
                shot = pump(send("Page.captureScreenshot", format="png", captureBeyondViewport=False))
                screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
                result.screenshot = screenshot
        finally:
            ws.close()
            try:
                self._endpoint(f"/json/close/{target['id']}")
            except Exception:
                pass
        return result
