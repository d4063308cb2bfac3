"""Headless Chromium driven over the Chrome DevTools Protocol, for tests that must see a page
rendered by a real browser. Standard library plus `websockets` (an Airflow dependency), so no
browser-automation package is needed; every wait has a timeout so a stuck browser fails a test
instead of hanging it."""
from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium (Debian's package, as root)"
INSTALL_TIMEOUT = 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1600")
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")


def _find() -> str | None:
    return shutil.which("chromium") or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None)


def require_chromium() -> str:
    """The browser's path, installing Debian's package when it is missing. Under CI a browser
    that cannot be installed is a failure; elsewhere the test skips and says how to install it."""
    found = _find()
    if found:
        return found
    reason = "chromium is not installed"
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
                if done.returncode != 0:
                    reason = f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}"
                    break
        except subprocess.TimeoutExpired as timeout:
            reason = f"`{' '.join(timeout.cmd)}` took more than {INSTALL_TIMEOUT}s"
        found = _find()
        if found:
            return found
    else:
        reason += " and cannot be installed here (needs apt-get as root)"
    message = f"{reason}; {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class CDPError(RuntimeError):
    """A DevTools command answered with an error, or an awaited answer never came."""


class Chromium:
    """One headless browser with one page, attached over a single websocket (flat sessions).

    Use as a context manager: the browser and its child processes are always killed on exit.
    Events of the page are kept in `events` for the test to inspect afterwards.
    """

    def __init__(self, binary: str, *, start_timeout: float = 30, command_timeout: float = 30) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self.command_timeout = command_timeout
        self.events: list[dict] = []
        self._profile: str | None = None
        self._next_id = 0
        self._process: subprocess.Popen | None = None
        self._socket = None
        self._session: str | None = None
        self._stderr: queue.Queue[str] = queue.Queue()

    def __enter__(self) -> Chromium:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self._process = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        url = self._devtools_url()
        self._socket = connect(url, proxy=None, max_size=None, open_timeout=self.start_timeout)
        pages = [t for t in self.send("Target.getTargets", session=False)["targetInfos"] if t["type"] == "page"]
        target = pages[0]["targetId"] if pages else self.send("Target.createTarget", {"url": "about:blank"},
                                                              session=False)["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False)["sessionId"]

    def _drain_stderr(self) -> None:
        """Keep reading so that a chatty browser never blocks on a full pipe."""
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.put(line)

    def _devtools_url(self) -> str:
        deadline = time.monotonic() + self.start_timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self._stderr.get(timeout=0.2)
            except queue.Empty:
                if self._process.poll() is not None:
                    break
                continue
            seen.append(line)
            match = DEVTOOLS_LINE.search(line)
            if match:
                return match.group(1)
        raise CDPError(f"Chromium did not announce its DevTools URL within {self.start_timeout}s "
                       f"(exit code {self._process.poll()}): {''.join(seen)[-2000:]}")

    def _receive(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return json.loads(self._socket.recv(timeout=remaining))

    def send(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float | None = None) -> dict:
        """Send a command and return its result; events arriving meanwhile are recorded."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + (timeout or self.command_timeout)
        while True:
            try:
                reply = self._receive(deadline)
            except TimeoutError:
                raise CDPError(f"{method}: no answer within {timeout or self.command_timeout}s") from None
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, *, timeout: float | None = None) -> dict:
        """The first recorded or arriving event named `method` that was not awaited before."""
        for event in self.events:
            if event["method"] == method and not event.get("_awaited"):
                event["_awaited"] = True
                return event
        deadline = time.monotonic() + (timeout or self.command_timeout)
        while True:
            try:
                event = self._receive(deadline)
            except TimeoutError:
                raise CDPError(f"no {method} event within {timeout or self.command_timeout}s") from None
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    event["_awaited"] = True
                    return event

    def open(self, url: str, *, timeout: float | None = None) -> None:
        """Navigate the page and wait until it has loaded."""
        self.send("Page.enable")
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        self.wait_for("Page.loadEventFired", timeout=timeout)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page; a thrown exception is an error."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def viewport(self, width: int, height: int, *, mobile: bool = False, scale: float = 1) -> None:
        """Render the page as a screen of this size (a phone: `mobile`, with its device scale)."""
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": scale,
                                                         "mobile": mobile})

    def click_and_wait(self, selector: str, *, timeout: float | None = None) -> None:
        """Click an element that navigates (a submit button, a link) and wait for the new page's load."""
        self.send("Page.enable")
        found = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                              "if (!e) return false; e.click(); return true; })()")
        if not found:
            raise CDPError(f"no element {selector!r} on the page")
        self.wait_for("Page.loadEventFired", timeout=timeout)

    def set_files(self, selector: str, *paths: Path) -> None:
        """Choose files in an <input type=file>, as a person does in the file dialog."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CDPError(f"no element {selector!r} on the page")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(p).resolve()) for p in paths]})

    def download(self, selector: str, folder: Path, *, timeout: float | None = None) -> Path:
        """Click a download link and wait until the browser has saved the file in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        self.send("Browser.setDownloadBehavior", {"behavior": "allowAndName", "downloadPath": str(folder),
                                                  "eventsEnabled": True}, session=False)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        began = self.wait_for("Browser.downloadWillBegin", timeout=timeout)["params"]
        while True:
            progress = self.wait_for("Browser.downloadProgress", timeout=timeout)["params"]
            if progress.get("guid") == began["guid"] and progress["state"] in ("completed", "canceled"):
                break
        if progress["state"] != "completed":
            raise CDPError(f"download of {began.get('suggestedFilename')} was canceled")
        saved = folder / began["guid"]
        named = folder / began["suggestedFilename"]
        saved.rename(named)
        return named

    def press(self, key: str, code: str, key_code: int) -> None:
        """A key pressed and released (e.g. "Tab", "Tab", 9), as from a keyboard."""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                 "windowsVirtualKeyCode": key_code})

    def screenshot(self, path: Path, attempts: int = 5) -> Path:
        """A PNG of the whole page, beyond the viewport. On a busy machine Chromium may answer with no
        image while it repaints after a viewport change: asked again, a moment later."""
        for attempt in range(attempts):
            data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}).get("data")
            if data:
                break
            time.sleep(0.2 * (attempt + 1))
        path.write_bytes(base64.b64decode(data or ""))
        return path

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in params.get("args", [])))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        return errors

    def close(self) -> None:
        """Close the socket, then kill the browser's process group: it was started in its own
        session, so the group holds only this browser and its helpers."""
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
