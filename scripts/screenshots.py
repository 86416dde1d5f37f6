"""Screenshots of the main screens of the demo database, taken with headless Chromium.

Logs in through Odoo's JSON-RPC, hands the session cookie to Chromium and drives it through the
DevTools protocol (websocket-client), then writes one PNG per screen. Run by scripts/screenshots,
which starts Odoo on the demo database when none answers; usable alone against a running Odoo:

    python scripts/screenshots.py --url http://localhost:8069 --db sms_marketing_demo --out docs/screenshots
"""

import argparse
import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import requests
import websocket

WIDTH, HEIGHT = 1400, 900
MOBILE_WIDTH, MOBILE_HEIGHT = 390, 844  # a phone (issue 13): Odoo's small-screen layout
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Lines of a CSV file imported in the preview screenshot: good, national, duplicate and bad lines.
IMPORT_CSV = "\n".join([
    "name;number;country",
    "Alice Martin;+33 6 12 34 56 01;FR",
    "Bruno Rossi;347 123 4502;IT",
    "Carla Peeters;0470 12 34 03;BE",
    "Dieter Braun;0151 2345 6704;DE",
    "Elena Ruiz;612 34 56 05;ES",
    "Fiona Clark;07700 123456;GB",
    "Nobody;12345;FR",
    "Not a phone;call me maybe;DE",
    "Alice again;+33612345601;FR",
    "",
])


def log(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


class Odoo:
    """The JSON-RPC side: login and a few reads."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        answer = self._post("/web/session/authenticate", {"db": db, "login": login, "password": password})
        if not answer.get("uid"):
            raise SystemExit(f"cannot log in to {self.url} as {login}")
        self.session_id = self.session.cookies.get("session_id")

    def _post(self, path, params):
        response = self.session.post(self.url + path, json={"jsonrpc": "2.0", "params": params}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise SystemExit(f"{path}: {body['error'].get('data', {}).get('message') or body['error']}")
        return body["result"]

    def call(self, model, method, *args, **kwargs):
        return self._post("/web/dataset/call_kw", {"model": model, "method": method, "args": list(args),
                                                   "kwargs": kwargs})

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        rows = self.call("ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)],
                         fields=["res_id"], limit=1)
        return rows[0]["res_id"] if rows else None


class Chromium:
    """Headless Chromium driven through the DevTools protocol."""

    def __init__(self, width=WIDTH, height=HEIGHT, mobile=False):
        binary = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
        if not binary:
            raise SystemExit("Chromium not found (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="sms_ext_screens_")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ws_url = None
        for _ in range(100):
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                break
            except (requests.RequestException, StopIteration, ValueError):
                time.sleep(0.2)
        if not ws_url:
            self.close()
            raise SystemExit("Chromium did not open its DevTools port")
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        if mobile:
            self.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)

    def send(self, method, **params):
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if result.get("exceptionDetails"):
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, selector, timeout=30):
        """Wait until ``selector`` (a CSS selector) matches a visible element and the UI is idle."""
        script = """
            new Promise((resolve) => {
                const deadline = Date.now() + TIMEOUT;
                const check = () => {
                    const el = document.querySelector(SELECTOR);
                    const busy = document.querySelector(".o_blockUI, .o_loading_indicator, .o-autocomplete--spinner");
                    if (el && el.offsetParent !== null && !busy) { resolve(true); }
                    else if (Date.now() > deadline) { resolve(false); }
                    else { setTimeout(check, 100); }
                };
                check();
            })
        """.replace("TIMEOUT", str(timeout * 1000)).replace("SELECTOR", json.dumps(selector))
        if not self.evaluate(script):
            raise RuntimeError(f"timed out waiting for {selector}")
        time.sleep(0.8)  # let animations (dialogs, notebook tabs) settle

    def click(self, selector):
        self.wait_for(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def click_header_button(self, label):
        """Click the form header's button ``label``; on a phone Odoo folds them into its Action menu."""
        self.wait_for(".o_form_view .o_statusbar_buttons")
        if self.evaluate("Boolean(document.querySelector('.o_statusbar_buttons .dropdown-toggle'))"):
            self.click(".o_statusbar_buttons .dropdown-toggle")
            time.sleep(0.5)
        found = self.evaluate(f"""(() => {{
            const button = [...document.querySelectorAll('.o_statusbar_buttons button, .dropdown-menu button')]
                .find((element) => element.textContent.trim() === {json.dumps(label)});
            button?.click();
            return Boolean(button);
        }})()""")
        if not found:
            raise RuntimeError(f"no {label} button in the form's header")

    def goto(self, url):
        self.send("Page.navigate", url=url)

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as image:
            image.write(base64.b64decode(data))
        log(f"wrote {path}")

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


def form_url(base, action, model, res_id):
    return f"{base}/web#{urllib.parse.urlencode({'action': action, 'model': model, 'view_type': 'form', 'id': res_id})}"


def take(url, db, out, login="admin", password="admin", mobile=False):  # noqa: S107 - the demo's documented login
    os.makedirs(out, exist_ok=True)
    odoo = Odoo(url, db, login, password)
    host = urllib.parse.urlsplit(odoo.url).hostname
    ids = {
        name: odoo.ref(f"sms_marketing_ext.{name}")
        for name in ("sms_demo_mailing_draft", "sms_demo_mailing_sent", "sms_demo_mailing_scheduled",
                     "sms_demo_gateway_local", "sms_demo_list_newsletter")
    }
    missing = [name for name, res_id in ids.items() if not res_id]
    if missing:
        raise SystemExit(f"the demo data is missing from {db}: {', '.join(missing)}")
    has_analytics = odoo.ref("sms_marketing_ext.link_tracker_click_action_sms")

    browser = Chromium(MOBILE_WIDTH, MOBILE_HEIGHT, mobile=True) if mobile else Chromium()
    try:
        browser.send("Network.setCookie", name="session_id", value=odoo.session_id, domain=host, path="/")
        sms_action = "mass_mailing_sms.mailing_mailing_action_sms"

        # 1. The composer: live counter of a Unicode message (emoji), GSM-compatible button.
        browser.goto(form_url(odoo.url, sms_action, "mailing.mailing", ids["sms_demo_mailing_draft"]))
        browser.wait_for(".o_sms_ext_counter .o_sms_ext_parts")
        browser.screenshot(os.path.join(out, "mailing_form_counter.png"))

        # 2. The recipients check of the scheduled mailing (both lists: invalid, duplicates, opt-outs...).
        browser.goto(form_url(odoo.url, sms_action, "mailing.mailing", ids["sms_demo_mailing_scheduled"]))
        browser.click_header_button("Check recipients")
        browser.wait_for(".modal .o_sms_ext_audience")
        browser.screenshot(os.path.join(out, "check_recipients.png"))

        # 3. A sent mailing: delivery results, clicks, opt-outs, credits.
        browser.goto(form_url(odoo.url, sms_action, "mailing.mailing", ids["sms_demo_mailing_sent"]))
        browser.wait_for(".o_form_view .o_statusbar_status")
        browser.screenshot(os.path.join(out, "mailing_sent.png"))

        # 4. Senders by state.
        browser.goto(f"{odoo.url}/web#action=sms_marketing_ext.sms_sender_action&view_type=kanban")
        browser.wait_for(".o_kanban_view .o_kanban_record")
        browser.screenshot(os.path.join(out, "senders_kanban.png"))

        # 5. The local gateway: balance and country prices.
        browser.goto(form_url(odoo.url, "sms_marketing_ext.sms_gateway_action", "sms.gateway",
                              ids["sms_demo_gateway_local"]))
        browser.click('.o_notebook .nav-link[name="prices"]')
        browser.wait_for('div[name="price_ids"] .o_data_row')
        browser.screenshot(os.path.join(out, "gateway_form.png"))

        # 6. Mailing lists.
        browser.goto(f"{odoo.url}/web#action=mass_mailing_sms.mailing_list_action_sms&view_type=kanban")
        browser.wait_for(".o_kanban_view .o_kanban_record")
        browser.screenshot(os.path.join(out, "mailing_lists.png"))

        # 7. CSV import preview (nothing is imported: the wizard stops at the preview).
        browser.goto(form_url(odoo.url, "mass_mailing_sms.mailing_list_action_sms", "mailing.list",
                              ids["sms_demo_list_newsletter"]))
        browser.click_header_button("Import numbers")
        browser.wait_for('.modal div[name="file_data"] .o_select_file_button')
        browser.evaluate("""(() => {
            const input = document.querySelector('.modal div[name="file_data"] input.o_input_file');
            const transfer = new DataTransfer();
            transfer.items.add(new File([CSV], "customers.csv", { type: "text/csv" }));
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", { bubbles: true }));
        })()""".replace("[CSV]", f"[{json.dumps(IMPORT_CSV)}]"))
        browser.wait_for('.modal div[name="file_data"] input.o_input')
        browser.click('.modal button[name="action_preview"]')
        browser.wait_for('.modal div[name="preview_html"] table')
        browser.evaluate("document.querySelector('.modal .modal-body').scrollTop = 0")
        browser.screenshot(os.path.join(out, "csv_import_preview.png"))

        # 8. Link analytics, when the addon has them.
        if has_analytics:
            browser.goto(f"{odoo.url}/web#action=sms_marketing_ext.link_tracker_click_action_sms")
            browser.wait_for(".o_pivot table")
            browser.screenshot(os.path.join(out, "link_analytics.png"))
    finally:
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--db", default=os.environ.get("SMS_EXT_DB", "sms_marketing_demo"))
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "docs", "screenshots"))
    parser.add_argument("--mobile", action="store_true",
                        help=f"as a phone ({MOBILE_WIDTH}x{MOBILE_HEIGHT}, touch), not a desktop ({WIDTH}x{HEIGHT})")
    args = parser.parse_args()
    take(args.url, args.db, args.out, args.login, args.password, args.mobile)


if __name__ == "__main__":
    main()
