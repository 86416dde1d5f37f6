import json
import os
import subprocess
import sys

import odoo
from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools import config

from .common import LocalGatewayMixin

WORKER_SCRIPT = os.path.join(os.path.dirname(__file__), "delivery_worker.py")


@tagged("post_install", "-at_install", "sms_delivery")
class TestSmsDeliveryProcesses(LocalGatewayMixin, BaseCase):
    """Exactly-once delivery across real Odoo worker processes: one killed with SIGKILL between
    the gateway's acceptance and its commit, and two sending the same mailing at once. The
    workers commit like production ones, on data of their own company, and clean it up."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_local_gateway("--report-delay", "3600")
        cls.dbname = odoo.tests.common.get_db_name()

    def _worker(self, phase, wait=True, **scenario):
        """Run delivery_worker.py in a new ``odoo-bin shell`` process on the test database."""
        odoo_bin = os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin")
        command = [sys.executable, odoo_bin, "shell", "-d", self.dbname, "--no-http", "--log-level=warn",
                   f"--addons-path={config['addons_path']}"]
        for option, key in (("--db_user", "db_user"), ("--db_host", "db_host"), ("--db_port", "db_port"),
                            ("--db_password", "db_password")):
            if config.get(key):
                command.append(f"{option}={config[key]}")
        env = dict(os.environ, SMS_EXT_WORKER=json.dumps({"phase": phase, **scenario}))
        with open(WORKER_SCRIPT, "rb") as script:
            process = subprocess.Popen(  # noqa: S603 - odoo-bin with fixed arguments
                command, stdin=script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
        if not wait:
            return process
        return self._result(process)

    def _result(self, process, timeout=300):
        out, err = process.communicate(timeout=timeout)
        lines = [line for line in out.decode().splitlines() if line.startswith("RESULT ")]
        if not lines:
            self.fail(f"worker printed no result (exit {process.returncode}): {err.decode()[-3000:]}")
        return process.returncode, json.loads(lines[-1][len("RESULT "):])

    def _setup(self, tag, contacts):
        token = f"tok_{tag}"
        self._gateway_create_account(token, 1000, price=0.05)
        code, ids = self._worker("setup", tag=tag, token=token, gateway_url=self.gateway_url, contacts=contacts)
        self.assertEqual(code, 0)
        self.addCleanup(self._worker, "cleanup", **ids)
        self.assertEqual((ids["state"], ids["outgoing"]), ("sending", contacts))
        return token, ids

    def _gateway_messages(self, token):
        return {message["uuid"]: message for message in self._gateway_admin(f"/_admin/messages?token={token}")}

    def test_worker_killed_between_accept_and_commit(self):
        token, ids = self._setup("sms_ext_crash", contacts=25)
        code, result = self._worker("crash", mailing=ids["mailing"])
        self.assertEqual(code, -9, "the worker died from SIGKILL")
        self.assertEqual(result, {"dying": True})
        accepted_before_crash = self._gateway_messages(token)
        self.assertEqual(len(accepted_before_crash), 10, "the gateway accepted the first batch")
        # Nothing was recorded: the batch is still outgoing, with the same uuids.
        _code, report = self._worker("report", mailing=ids["mailing"])
        outgoing = {uuid for status, uuid, _attempts in report["traces"] if status == "outgoing"}
        self.assertLessEqual(set(accepted_before_crash), outgoing)
        # A new worker sends everything; the gateway de-duplicates the batch sent twice.
        code, result = self._worker("send", mailing=ids["mailing"])
        self.assertEqual((code, result["state"]), (0, "done"))
        messages = self._gateway_messages(token)
        self.assertEqual(len(messages), 25, "every message received once")
        _code, report = self._worker("report", mailing=ids["mailing"])
        self.assertEqual({status for status, _uuid, _attempts in report["traces"]}, {"pending"})
        self.assertEqual({uuid for _status, uuid, _attempts in report["traces"]}, set(messages))
        presented = {uuid: message["presented_count"] for uuid, message in messages.items()}
        self.assertEqual(sorted(presented[uuid] for uuid in accepted_before_crash), [2] * 10)
        self.assertEqual(sum(1 for count in presented.values() if count == 1), 15)
        stats = self._gateway_admin(f"/_admin/stats?token={token}")
        self.assertAlmostEqual(stats["credits_charged"], 25 * 0.05, msg="charged once per message")
        # What we recorded as spent is what the gateway charged, also for the batch whose answer
        # died with the worker (the gateway answers its retry "accepted, 0 credits").
        self.assertAlmostEqual(report["credits"], stats["credits_charged"], places=6)
        self.assertAlmostEqual(report["stat_credits"], stats["credits_charged"], places=6)

    def test_two_concurrent_workers(self):
        token, ids = self._setup("sms_ext_concurrent", contacts=120)
        self._gateway_set_faults(latency_ms=150)  # both workers are mid-call at the same time
        workers = [self._worker("send", wait=False, mailing=ids["mailing"], batches_only=True) for _i in range(2)]
        results = [self._result(worker) for worker in workers]
        self.assertEqual([code for code, _result in results], [0, 0])
        batches = [result["batches"] for _code, result in results]
        self.assertEqual(sum(batches), 12, batches)
        self.assertTrue(all(batches), f"both workers sent batches: {batches}")
        messages = self._gateway_messages(token)
        self.assertEqual(len(messages), 120)
        self.assertTrue(all(message["presented_count"] == 1 for message in messages.values()),
                        "no message was taken by both workers")
