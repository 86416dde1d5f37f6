"""Sending throughput: sms_marketing_ext's send cron against the project's local gateway.

The orchestrator starts ``gateway/sms_gateway.py serve`` on a free loopback port with a fresh
SQLite file (delivery reports delayed by an hour, so none compete with sending), creates an
account, then runs the worker in its own process:

1. an ``sms.gateway`` (jsonrpc, batch_size 1000, default) and an SMS mailing (opt-out link on,
   one tracked link) on a list of N contacts with valid, distinct numbers;
2. ``_sms_start_sending()`` (materialises the audience), COMMIT: timed separately;
3. ``env['mailing.mailing']._cron_sms_send(time_budget=3600)`` in a normal (non-test) environment,
   which commits after each batch, until the mailing is done: timed.

Afterwards the gateway's ``/_admin/stats`` must show exactly N accepted messages and
``duplicate_accept_attempts == 0``.

Usage (normally through benchmarks/run):
    python benchmarks/bench_send.py --db sms_ext_bench --send-size 100000
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import benchlib

TOKEN = "bench-token"  # noqa: S105 - a throw-away account of a throw-away local gateway
GATEWAY_NAME = "Benchmark gateway"
SUBJECT_PREFIX = "Benchmark send"
PRICE = 0.05
FR_PRICE = 0.045


# ------------------------------------------------------------------------------------------------
# Worker
# ------------------------------------------------------------------------------------------------

def _clean_previous_runs(env):
    """Drop the mailings and gateway of earlier send runs (their traces would cap or
    de-duplicate this run's numbers), and take every bench number off the blacklist."""
    cr = env.cr
    old = env["mailing.mailing"].search([("subject", "=like", f"{SUBJECT_PREFIX}%")])
    if old:
        cr.execute("DELETE FROM mailing_trace WHERE mass_mailing_id = ANY(%s)", [old.ids])
        old.unlink()
    env["sms.gateway"].with_context(active_test=False).search([("name", "=", GATEWAY_NAME)]).unlink()
    cr.execute("UPDATE phone_blacklist SET active = false WHERE number LIKE '+336%%' AND length(number) = 12")
    # Nothing else may be queued for the send cron while we time it: the demo data's queued SMS
    # mailings of this benchmark-only database go back to draft.
    cr.execute("UPDATE mailing_mailing SET state = 'draft' WHERE mailing_type = 'sms' "
               "AND state IN ('in_queue', 'sending')")


def worker(db, size, base_url):
    def job():
        with benchlib.odoo_env(db) as env:
            cr = env.cr
            list_id = benchlib.find_list(cr, "send", size)
            if not list_id:
                raise RuntimeError(f"no send data set for {size} contacts: run the orchestrator first")
            _clean_previous_runs(env)
            gateway = env["sms.gateway"].create({
                "name": GATEWAY_NAME,
                "provider": "jsonrpc",
                "base_url": base_url,
                "account_token": TOKEN,
                "batch_size": 1000,
                "is_default": True,
                "throughput": 0,
            })
            mailing = env["mailing.mailing"].create({
                "subject": f"{SUBJECT_PREFIX} {size}",
                "mailing_type": "sms",
                "mailing_model_id": env["ir.model"]._get_id("mailing.list"),
                "contact_list_ids": [(6, 0, [list_id])],
                "body_plaintext": f"Spring sale: 20% off this weekend, see {base_url}/promo",
                "sms_allow_unsubscribe": True,
                "sms_gateway_id": gateway.id,
                "sms_sender_id": False,
            })
            cr.commit()
            _, materialise = benchlib.measure(lambda: (mailing._sms_start_sending(), cr.commit()))
            env.invalidate_all()
            if mailing.state != "sending":
                raise RuntimeError(f"the mailing did not start sending (state {mailing.state}): "
                                   + "; ".join(m.body or "" for m in mailing.message_ids[:1]))
            cr.execute("SELECT count(*) FILTER (WHERE trace_status = 'outgoing'), count(*) "
                       "FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
            outgoing, traces = cr.fetchone()

            def send_all():
                runs = 0
                while runs < 10:
                    runs += 1
                    env["mailing.mailing"]._cron_sms_send(time_budget=3600)
                    env.invalidate_all()
                    if mailing.state == "done" or mailing.sms_waiting_credit:
                        break
                return runs

            cron_runs, send = benchlib.measure(send_all)
            cr.execute("SELECT trace_status, count(*) FROM mailing_trace WHERE mass_mailing_id = %s GROUP BY 1",
                       [mailing.id])
            statuses = dict(cr.fetchall())
            return {
                "size": size,
                "materialise": materialise,
                "send": send,
                "outgoing_before": outgoing,
                "traces": traces,
                "statuses": statuses,
                "cron_runs": cron_runs,
                "state": mailing.state,
                "waiting_credit": mailing.sms_waiting_credit,
            }

    benchlib.worker_main(job)


# ------------------------------------------------------------------------------------------------
# Orchestrator
# ------------------------------------------------------------------------------------------------

class Gateway:
    """The project's local gateway in a subprocess, with a fresh SQLite file."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.db = self.workdir / "gateway.sqlite3"
        self.log = self.workdir / "gateway.log"
        self.script = benchlib.REPO_ROOT / "gateway" / "sms_gateway.py"
        self.proc = None
        self.url = None

    def cli(self, *args):
        benchlib.sh([sys.executable, str(self.script), *args, "--db", str(self.db)], capture_output=True, text=True)

    def start(self):
        self.cli("account-create", "--token", TOKEN, "--name", "Benchmark", "--credits", "1e9",
                 "--price", str(PRICE), "--country-price", f"FR={FR_PRICE}")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
                [sys.executable, str(self.script), "serve", "--port", "0", "--db", str(self.db),
                 "--report-delay", "3600"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", self.log.read_text())
            if match:
                self.url = match.group(1)
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the local gateway did not start: {self.log.read_text()[-500:]}")

    def stats(self):
        with urllib.request.urlopen(f"{self.url}/_admin/stats?token={TOKEN}", timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(db, size, timeout=1200, log=print):
    with benchlib.odoo_env(db) as env:
        if not benchlib.find_list(env.cr, "send", size):
            log(f"  building the send data set of {size:,} contacts (bulk SQL)")
            benchlib.build_list(env.cr, "send", size, mix=False)
            env.cr.commit()
    # The traces of earlier send runs go now, so that VACUUM clears them before the timed run.
    benchlib.psql(db, "DELETE FROM mailing_trace WHERE mass_mailing_id IN (SELECT id FROM mailing_mailing "
                      "WHERE subject LIKE 'Benchmark send%')")
    benchlib.vacuum(db)
    with tempfile.TemporaryDirectory(prefix="sms_bench_gw_") as workdir:
        gateway = Gateway(workdir)
        url = gateway.start()
        try:
            log(f"  gateway at {url}; sending N={size:,} ...")
            result = benchlib.run_worker(
                [os.path.abspath(__file__), "--worker", "--db", db, "--send-size", str(size), "--base-url", url],
                timeout,
            )
            stats = gateway.stats()
        finally:
            gateway.stop()
    result["gateway"] = {
        "accepted": stats["by_state"].get("accepted", 0),
        "messages": stats["messages"],
        "by_state": stats["by_state"],
        "duplicate_accept_attempts": stats["duplicate_accept_attempts"],
        "presented_total": stats["presented_total"],
        "credits_charged": stats["credits_charged"],
    }
    result.setdefault("size", size)
    log("    " + describe(result))
    return result


def describe(result):
    if result.get("error"):
        return f"failed: {result['error']}"
    mat, send, size = result["materialise"], result["send"], result["size"]
    sent = result["outgoing_before"]
    return (f"materialise {mat['seconds']:.2f} s, send {send['seconds']:.2f} s = "
            f"{sent / send['seconds']:,.0f} SMS/s ({size / (mat['seconds'] + send['seconds']):,.0f} SMS/s "
            f"with materialisation), +{send['rss_growth_mb']:.0f} MB RSS, {send['queries']} queries; "
            f"gateway accepted {result['gateway']['accepted']:,}, "
            f"duplicate_accept_attempts {result['gateway']['duplicate_accept_attempts']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=benchlib.DEFAULT_DB)
    parser.add_argument("--send-size", type=int, default=100_000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.db, args.send_size, args.base_url)
        return 0
    print(json.dumps(run(args.db, args.send_size), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
