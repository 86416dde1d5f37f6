import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from odoo.modules.module import get_module_path

from odoo.addons.mail.tests.common import mail_new_test_user


class SmsMarketingUsersMixin:
    """Users of each profile the addon cares about, created once per test class."""

    @classmethod
    def _create_sms_users(cls):
        cls.user_marketing = mail_new_test_user(
            cls.env,
            login="sms_marketing_user",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_user",
            name="Mia Marketing",
            email="mia@example.com",
        )
        cls.user_sms_admin = mail_new_test_user(
            cls.env,
            login="sms_marketing_admin",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_admin",
            name="Adam SMS Admin",
            email="adam@example.com",
        )
        cls.user_employee = mail_new_test_user(
            cls.env,
            login="sms_employee",
            groups="base.group_user",
            name="Eve Employee",
        )
        cls.user_portal = mail_new_test_user(
            cls.env,
            login="sms_portal",
            groups="base.group_portal",
            name="Paul Portal",
        )


class SmsSenderMixin:
    """Senders in each state, for tests that need one."""

    JUSTIFICATION = base64.b64encode(b"%PDF-1.4 letterhead with a signed authorisation")

    @classmethod
    def _create_sender(cls, name, sender_type="alphanumeric", state="approved", company=None, **vals):
        # Only an approved sender can be a company's default: flagged once approved.
        is_default = vals.pop("is_default", False) if state == "approved" else vals.get("is_default")
        sender = (
            cls.env["sms.sender"]
            .sudo()
            .create(
                {
                    "name": name,
                    "sender_type": sender_type,
                    "description": f"{name} description",
                    "reason": "Promotions of the shop",
                    "justification_document": cls.JUSTIFICATION,
                    "justification_filename": "letterhead.pdf",
                    "company_id": (company or cls.env.company).id,
                    **vals,
                }
            )
        )
        if state != "draft":
            sender.action_submit()
        if state in ("approved", "refused"):
            sender.action_approve()
        if state == "refused":
            sender.refusal_reason = "Not your brand"
            sender.action_refuse()
        if is_default and state == "approved":
            sender.is_default = True
        return sender


class LocalGatewayMixin:
    """The project's real local SMS gateway (``gateway/sms_gateway.py`` next to the addon) run as a
    subprocess on a free loopback port with a throw-away SQLite database, for a whole test class.

    Call ``cls._start_local_gateway()`` in ``setUpClass`` (after ``super().setUpClass()``); it sets
    ``cls.gateway_url`` and ``cls.gateway_db`` and stops the server and removes its files at class
    cleanup. A missing gateway is an error, never a skip.
    """

    GATEWAY_START_TIMEOUT = 30.0
    GATEWAY_HTTP_TIMEOUT = 15.0
    _LISTENING_RE = re.compile(rb"listening on (http://\S+)")

    gateway_url = None
    gateway_db = None
    gateway_log = None

    @classmethod
    def _local_gateway_script(cls):
        addon_path = get_module_path("sms_marketing_ext")
        script = os.path.join(os.path.dirname(addon_path), "gateway", "sms_gateway.py")
        if not os.path.isfile(script):
            raise AssertionError(f"The local SMS gateway is missing: {script} must exist (the tests use the real one).")
        return script

    @classmethod
    def _start_local_gateway(cls, *serve_args):
        """Start ``sms_gateway.py serve`` (extra CLI options in ``serve_args``, e.g. ``"--report-delay",
        "0.2"``) and wait until it answers ``/_admin/health``; return its base URL."""
        script = cls._local_gateway_script()
        workdir = tempfile.mkdtemp(prefix="sms_gateway_test_")
        cls.addClassCleanup(shutil.rmtree, workdir, ignore_errors=True)
        cls.gateway_db = os.path.join(workdir, "gateway.sqlite3")
        cls.gateway_log = os.path.join(workdir, "gateway.log")
        log_file = open(cls.gateway_log, "wb")  # noqa: SIM115 - outlives this method, closed at class cleanup
        cls.addClassCleanup(log_file.close)
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, script, "serve", "--db", cls.gateway_db, "--host", "127.0.0.1", "--port", "0",
             *serve_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
        cls.addClassCleanup(cls._stop_local_gateway, process)
        cls.gateway_url = cls._wait_listening(process)
        cls._gateway_admin("/_admin/health")
        return cls.gateway_url

    @classmethod
    def _wait_listening(cls, process):
        deadline = time.monotonic() + cls.GATEWAY_START_TIMEOUT
        output = b""
        while time.monotonic() < deadline:
            match = cls._LISTENING_RE.search(output)
            if match:
                return match.group(1).decode()
            if process.poll() is not None:
                break
            ready, _w, _x = select.select([process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk and process.poll() is not None:
                    break
                output += chunk
        raise AssertionError(
            f"The local SMS gateway did not start (exit code {process.poll()}): {output!r}\n{cls._gateway_log_tail()}"
        )

    @classmethod
    def _gateway_log_tail(cls, size=4000):
        if not cls.gateway_log or not os.path.exists(cls.gateway_log):
            return ""
        with open(cls.gateway_log, "rb") as log:
            return log.read()[-size:].decode(errors="replace")

    @staticmethod
    def _stop_local_gateway(process):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stdout:
            process.stdout.close()

    @classmethod
    def _gateway_cli(cls, *args):
        """Run ``sms_gateway.py <args> --db <the test database>``; return its standard output."""
        completed = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, cls._local_gateway_script(), *args, "--db", cls.gateway_db],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode:
            raise AssertionError(f"sms_gateway.py {' '.join(args)} failed: {completed.stderr or completed.stdout}")
        return completed.stdout

    @classmethod
    def _gateway_create_account(cls, token, balance, name=None, price=None, country_prices=None, senders=None,
                                webhook_secret=None, inbound_url=None):
        """Create (or reset) an account through the CLI; ``country_prices`` is ``{"FR": 0.045, ...}``."""
        args = ["account-create", "--token", token, "--name", name or token, "--credits", str(balance)]
        if price is not None:
            args += ["--price", str(price)]
        for code, country_price in (country_prices or {}).items():
            args += ["--country-price", f"{code}={country_price}"]
        for sender in senders or ():
            args += ["--sender", sender]
        if webhook_secret is not None:
            args += ["--webhook-secret", webhook_secret]
        if inbound_url is not None:
            args += ["--inbound-url", inbound_url]
        return cls._gateway_cli(*args)

    @classmethod
    def _gateway_admin(cls, path, payload=None):
        """Call an admin route of the running gateway (GET without ``payload``, else POST of it as JSON)
        and return the decoded JSON answer; a non-2xx answer fails with its body."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http URL of the test gateway
            cls.gateway_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=cls.GATEWAY_HTTP_TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"gateway {path} answered HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def _gateway_set_faults(self, **settings):
        """Change the gateway's fault-injection settings (``fail_ratio``, ``latency_ms``...) for the current
        test only (the previous values come back at its cleanup); return all settings."""
        previous = self._gateway_admin("/_admin/faults")
        self.addCleanup(self._gateway_admin, "/_admin/faults", {name: previous[name] for name in settings})
        return self._gateway_admin("/_admin/faults", settings)
