"""The playground in a real browser: JupyterLab serves notebooks/06_playground.ipynb, headless
Chromium runs every cell, moves sliders, presses Run and then Stop.

Needs Debian's chromium (/usr/bin/chromium; `apt-get install chromium`) and the Python package
playwright (never `playwright install`: it would download a browser of its own). The server
runs in quick mode on 127.0.0.1 with no token and is always killed at the end. The screenshot
goes to artifacts/playground.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: install it with `apt-get install chromium`", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is missing")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/06_playground.ipynb"
SCREENSHOT = ROOT / "artifacts" / "playground.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JupyterLab settings: no pop-ups (news, update checks) in the screenshot, and no autosave, which
# would write the executed notebook back into the repository.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                '{"fetchNews": "false", "checkForUpdates": false}',
                "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": '{"autosave": false}'}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """Start JupyterLab on a free port (quick mode, no token); yield its base URL; kill it."""
    port, original = free_port(), (ROOT / NOTEBOOK).read_bytes()
    for name, text in LAB_SETTINGS.items():
        (tmp_path / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "settings" / name).write_text(text)
    env = dict(os.environ, NSTUTILS_QUICK="1", JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), IPYTHONDIR=str(tmp_path / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    env.pop("MPLBACKEND", None)  # the notebook uses the inline backend
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={ROOT}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--allow-root",
           f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}"]
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        try:
            wait_for_server(f"http://127.0.0.1:{port}/api/status", proc, timeout=90)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            tail = (tmp_path / "jupyter.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{err}; its log ends with:\n{tail}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if proc.poll() is None:
                os.killpg(proc.pid, sig)  # the server and the kernels it started
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
        log.close()
        if (ROOT / NOTEBOOK).read_bytes() != original:
            (ROOT / NOTEBOOK).write_bytes(original)
            pytest.fail("JupyterLab saved the notebook during the test; the original was restored")


def drag(page, handle, dx: float) -> None:
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=8)
    page.mouse.up()


def slider_row(app, label: str):
    return app.locator(".widget-hslider", has_text=label).first


def test_playground_in_jupyterlab(lab):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})  # a laptop screen
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{lab}/lab/tree/{NOTEBOOK}", timeout=90_000)
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')",
                                   timeout=90_000)
            page.wait_for_function("() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel",
                                   timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # The last cell saves the result; its output names the file.
            page.locator(".jp-OutputArea-output pre", has_text="run002_").wait_for(timeout=300_000)

            app = page.locator(".jp-OutputArea-output", has=page.locator(".widget-tab")).first
            app.evaluate("el => el.scrollIntoView({block: 'start'})")
            run_button = app.locator("button", has_text="Run").first
            stop_button = app.locator("button", has_text="Stop").first
            assert run_button.is_enabled() and stop_button.is_disabled()

            # Move the style weight slider with the mouse; its readout follows.
            style = slider_row(app, "style weight")
            before = style.locator(".widget-readout").inner_text()
            drag(page, style.locator(".noUi-handle, .ui-slider-handle").first, 60)
            page.wait_for_function("([el, v]) => el.innerText !== v",
                                   arg=[style.locator(".widget-readout").element_handle(), before],
                                   timeout=10_000)

            # Many steps, so that Stop has something to stop: the steps slider to its end.
            app.get_by_text("Optimizer", exact=True).click()
            steps = slider_row(app, "steps")
            steps.locator(".noUi-handle, .ui-slider-handle").first.focus()
            page.keyboard.press("End")
            page.wait_for_function("el => el.innerText.trim() === '2000'",
                                   arg=steps.locator(".widget-readout").element_handle(), timeout=10_000)
            app.get_by_text("Weights", exact=True).click()

            preview = app.locator("img.nst-preview")
            src = preview.get_attribute("src")
            run_button.click()
            page.wait_for_function("([el, s]) => el.src !== s", arg=[preview.element_handle(), src],
                                   timeout=180_000)
            assert app.get_by_text("steps/s", exact=False).count() == 1
            stop_button.click()
            status = app.get_by_text("stopped after step", exact=False)
            status.wait_for(timeout=120_000)
            assert "of 2000" in status.inner_text()  # the kernel got the steps set in the browser
            assert run_button.is_enabled() and stop_button.is_disabled()
            app.evaluate("el => el.scrollIntoView({block: 'start'})")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        except Exception:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT.with_name("playground-failure.png")))
            raise
        finally:
            browser.close()
