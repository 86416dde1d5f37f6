import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import odoo
from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools import SQL, config

from .common import LocalGatewayMixin, stop_process
from .ovh_api_server import OvhAccount, OvhApiServer

WORKER_SCRIPT = os.path.join(os.path.dirname(__file__), "delivery_worker.py")
CRON_NAME = "SMS Marketing: segment and send"
# Cron jobs killed after this many seconds: low enough that one run (half of it) cannot send the
# test's audience, high enough for a busy 2-core machine to load a worker and commit a chunk.
LIMIT_TIME_REAL = 15

_logger = logging.getLogger(__name__)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    @staticmethod
    def _odoo_command(*args):
        """``odoo-bin <args>`` on this test run's addons and database server."""
        odoo_bin = os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin")
        command = [sys.executable, odoo_bin, *args, f"--addons-path={config['addons_path']}"]
        for option, key in (("--db_user", "db_user"), ("--db_host", "db_host"), ("--db_port", "db_port"),
                            ("--db_password", "db_password")):
            if config.get(key):
                command.append(f"{option}={config[key]}")
        return command

    def _worker(self, phase, wait=True, **scenario):
        """Run delivery_worker.py in a new ``odoo-bin shell`` process on the test database."""
        command = self._odoo_command("shell", "-d", self.dbname, "--no-http", "--log-level=warn")
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

    def _setup(self, tag, contacts, expected=None, **options):
        token = f"tok_{tag}"
        self._gateway_create_account(token, 10000, price=0.05)
        code, ids = self._worker("setup", tag=tag, token=token, gateway_url=self.gateway_url, contacts=contacts,
                                 **options)
        self.assertEqual(code, 0)
        self.addCleanup(self._worker, "cleanup", **ids)
        self.assertEqual((ids["state"], ids["outgoing"]), expected or ("sending", contacts))
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

    def test_ovh_worker_killed_mid_batch(self):
        """Issue 12 §1, OVHcloud (no idempotency key): a worker killed by SIGKILL in the middle of a
        batch's call, after OVH took 4 of its 10 jobs and before anything was recorded. The next
        worker finds those 4 at OVH by their tag (accepted, OVH's id kept) and does not send them
        again; the 6 OVH never received wait for the recovery's grace, then go out once. Each
        recipient reaches OVH's server exactly once (the local server checking OVH's signature)."""
        account = OvhAccount("ak_worker", "as_worker_secret", "ck_worker", "sms-wk12345-1", credits=100.0)
        account.rates = {"fr": 1.0}
        server = OvhApiServer(account)
        server.start()
        self.addCleanup(server.stop)
        ovh = {"endpoint": server.url, "application_key": "ak_worker", "application_secret": "as_worker_secret",
               "consumer_key": "ck_worker", "service_name": "sms-wk12345-1"}
        code, ids = self._worker("setup", tag="sms_ext_ovh_crash", ovh=ovh, contacts=25)
        self.assertEqual(code, 0)
        self.addCleanup(self._worker, "cleanup", **ids)
        self.assertEqual((ids["state"], ids["outgoing"]), ("sending", 25))

        code, result = self._worker("crash", mailing=ids["mailing"], die_after_jobs=4)
        self.assertEqual((code, result), (-9, {"dying": True}), "the worker died from SIGKILL mid-call")
        self.assertEqual(len(account.jobs), 4, "OVH took 4 jobs of the batch")
        _code, report = self._worker("report", mailing=ids["mailing"])
        self.assertEqual(len(report["handed_over"]), 10, "the batch was marked handed over before the call")
        self.assertEqual({status for status, _uuid, _attempts in report["traces"]}, {"outgoing"})

        code, result = self._worker("send", mailing=ids["mailing"])
        self.assertEqual((code, result["state"]), (0, "sending"), "6 messages still wait for the grace")
        taken_first = {job["tag"]: job for job in account.jobs[:4]}
        _code, report = self._worker("report", mailing=ids["mailing"])
        self.assertEqual(len(report["handed_over"]), 6)
        self.assertFalse(set(report["handed_over"]) & set(taken_first), "the 4 OVH has are settled")
        for tag, job in taken_first.items():
            self.assertEqual(report["refs"].get(tag), str(job["id"]), "found at OVH by its tag: OVH's id kept")
        self.assertEqual(len(account.jobs), 19, "the 4 found are not sent again, the other 15 went out")
        lookups = [call for call in account.calls if call[1] == "outgoing" and "tag" in call[2]]
        self.assertEqual(len(lookups), 10, "each message of the batch looked up once, not before every batch")

        self.assertEqual(self._worker("age", mailing=ids["mailing"], minutes=5), (0, {"aged": 6}))
        code, result = self._worker("send", mailing=ids["mailing"])
        self.assertEqual((code, result["state"]), (0, "done"))
        receivers = [job["receiver"] for job in account.jobs]
        self.assertEqual(len(receivers), 25)
        self.assertEqual(len(set(receivers)), 25, "each recipient exactly once at OVH")
        _code, report = self._worker("report", mailing=ids["mailing"])
        self.assertEqual({status for status, _uuid, _attempts in report["traces"]}, {"pending"})
        self.assertEqual({uuid for _status, uuid, _attempts in report["traces"]}, {job["tag"] for job in account.jobs})
        self.assertFalse(report["handed_over"])
        self.assertEqual(len(report["refs"]), 25)
        self.assertAlmostEqual(report["credits"], 100.0 - account.credits, msg="recorded as OVH charged, once")

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

    def test_two_workers_store_prices_and_finish_at_once(self):
        """Two workers, each in its own transaction begun before the other's commit: both store
        the new price list of the gateway and both record the end of the mailing. The second
        skips what the first stored (the unique price per country, a serialization failure on the
        mailing) instead of failing its batch: what it would have written is there."""
        token, ids = self._setup("sms_ext_race", contacts=3)
        self._gateway_create_account(token, 10000, price=0.05, country_prices={"FR": 0.045})
        registry = odoo.modules.registry.Registry(self.dbname)
        with registry.cursor() as cr1, registry.cursor() as cr2:
            env1 = odoo.api.Environment(cr1, odoo.SUPERUSER_ID, {})
            env2 = odoo.api.Environment(cr2, odoo.SUPERUSER_ID, {})
            self.assertFalse(env2["sms.gateway"].browse(ids["gateway"]).price_ids, "worker 2's snapshot")
            self.assertEqual(env1["sms.gateway"].browse(ids["gateway"])._refresh_from_gateway(), 10000)
            cr1.commit()
            self.assertEqual(env2["sms.gateway"].browse(ids["gateway"])._refresh_from_gateway(), 10000)
            cr2.commit()
            self.assertEqual(env2["sms.gateway"].browse(ids["gateway"])._price_table(), {"FR": 0.045})
            cr2.commit()  # the next transaction of worker 2 begins with its read of the mailing below

            # Every message sent; worker 2 reads the mailing, then worker 1 finishes it.
            cr1.execute(SQL("UPDATE mailing_trace SET trace_status = 'pending' WHERE mass_mailing_id = %s",
                            ids["mailing"]))
            cr1.commit()
            mailing1 = env1["mailing.mailing"].browse(ids["mailing"])
            mailing2 = env2["mailing.mailing"].browse(ids["mailing"])
            self.assertEqual(mailing2.state, "sending")
            mailing1._sms_finish_if_done()
            self.assertEqual(mailing1.state, "done")
            cr1.commit()
            mailing2._sms_finish_if_done()
            cr2.commit()
            self.assertEqual(mailing2.state, "done")

    def _start_server(self, limit_time_real):
        """A real multi-process Odoo server on the test database: 2 HTTP workers and 1 cron worker
        whose cron jobs are killed (SIGKILL) after ``limit_time_real`` seconds; its log goes to a
        file of its own (returned), read by the test."""
        log_dir = tempfile.mkdtemp(prefix="sms_ext_server_")
        self.addCleanup(shutil.rmtree, log_dir, ignore_errors=True)  # runs after the server's stop below
        log_path = os.path.join(log_dir, "odoo.log")
        command = self._odoo_command(
            "-d", self.dbname, "--workers=2", "--max-cron-threads=1", f"--limit-time-real={limit_time_real}",
            "--limit-time-cpu=600", "--http-interface=127.0.0.1", f"--http-port={_free_port()}",
            f"--gevent-port={_free_port()}", f"--logfile={log_path}", "--log-level=info",
        )
        process = subprocess.Popen(  # noqa: S603 - odoo-bin with fixed arguments
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.addCleanup(self._stop_server, process)
        return process, log_path

    @staticmethod
    def _stop_server(process):
        stop_process(process, 30, kill_wait=10)  # SIGTERM: graceful shutdown of the prefork server and its workers

    def _mailing_progress(self, mailing_id):
        with odoo.sql_db.db_connect(self.dbname).cursor() as cr:
            cr.execute(SQL("SELECT state, sms_audience_pending, sms_materialized_upto FROM mailing_mailing "
                           "WHERE id = %s", mailing_id))
            return cr.fetchone()

    def _wake_cron_workers(self):
        """NOTIFY cron_trigger, as Odoo does when a cron is triggered for now. Odoo's cron worker
        sleeps 60-69 s between polls unless notified, and a worker is killed after
        limit_time_real seconds even while it sleeps: with a limit below a minute, as here, an
        idle cron worker never wakes by itself (with the default 120 s it does)."""
        with odoo.sql_db.db_connect("postgres").cursor() as cr:
            cr.execute(SQL("NOTIFY cron_trigger, %s", self.dbname))

    def test_cron_worker_time_limit(self):
        """Odoo in multi-process mode (--workers=2 --max-cron-threads=1) with cron jobs killed after
        15 s: a run (7.5 s budget) cannot prepare and send 20,000 recipients; the audience is
        materialised over several runs, each chunk committed, while sending has already started,
        and the mailing completes with every recipient targeted and sent exactly once, whatever
        runs the server killed meanwhile."""
        contacts = 20000
        token, ids = self._setup("sms_ext_timelimit", contacts=contacts, expected=("in_queue", 0), bulk=True,
                                 queue=True, chunk_size=2000, batch_size=500)
        # Every gateway call takes a second: whatever the machine's speed, one run (7.5 s) can
        # neither send the 40 batches nor interleave the 10 chunks of the audience with them.
        self._gateway_set_faults(latency_ms=1000)
        process, log_path = self._start_server(limit_time_real=LIMIT_TIME_REAL)
        observed = set()
        deadline = time.monotonic() + 240
        state = None
        while time.monotonic() < deadline and process.poll() is None:
            self._wake_cron_workers()
            state, audience_pending, upto = self._mailing_progress(ids["mailing"])
            observed.add((state, bool(audience_pending), upto))
            if state == "done":
                break
            time.sleep(1)
        self._stop_server(process)
        with open(log_path, encoding="utf-8", errors="replace") as log_file:
            log = log_file.read()
        self.assertEqual(state, "done", f"the mailing did not complete; server log tail:\n{log[-3000:]}")
        # Several runs of the send cron, and the audience materialised across more than one of them.
        runs = re.split(re.escape(f"Starting job `{CRON_NAME}`."), log)[1:]
        materialising = [run for run in runs if f"SMS mailing {ids['mailing']}: audience materialised" in run]
        kills = len(re.findall(r"WorkerCron \(\d+\) timeout after", log))
        self.assertGreaterEqual(len(runs), 3, "one run could not finish the mailing")
        self.assertGreaterEqual(len(materialising), 2, "the audience was prepared over several runs")
        self.assertIn(("sending", True), {(state, pending) for state, pending, _upto in observed},
                      "sending had started while the audience was still being prepared")
        # Every recipient exactly once: one trace per contact, each with its own uuid, all accepted;
        # the gateway received each message once and charged it once.
        _code, recipients = self._worker("recipients", mailing=ids["mailing"])
        self.assertEqual(recipients["contacts"], contacts)
        self.assertEqual(recipients["shapes"], [json.dumps([1, 1, 1])])
        self.assertEqual(recipients["statuses"], ["pending"])
        self.assertFalse(recipients["pending"])
        received = self._gateway_admin(f"/_admin/messages?token={token}&limit={contacts * 2}")
        _code, report = self._worker("report", mailing=ids["mailing"])
        self.assertEqual({message["uuid"] for message in received}, {uuid for _s, uuid, _a in report["traces"]})
        stats = self._gateway_admin(f"/_admin/stats?token={token}")
        self.assertEqual(stats["messages"], contacts)
        self.assertAlmostEqual(stats["credits_charged"], contacts * 0.05, places=4, msg="charged once per message")
        _logger.info("Time limit: %s cron runs, %s of them materialising, %s cron workers killed by the server",
                     len(runs), len(materialising), kills)
