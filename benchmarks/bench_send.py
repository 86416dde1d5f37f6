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

In the same run (issue 14 §1, §3): the gateway's own rate (a plain client posting pre-encoded
batches of 1,000, no Odoo), a per-step profile of the send loop (timers wrapped around the
steps' methods in the benchmark process only), the same mailing sent by 2 worker processes
running the send cron at once (ratio to 1 worker, duplicates checked on the gateway), and the
time from a send cron start to the first message accepted by the gateway for a mailing of 1M
recipients whose audience is still being materialised.

Usage (normally through benchmarks/run):
    python benchmarks/bench_send.py --db sms_ext_bench --send-size 100000
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import benchlib

TOKEN = "bench-token"  # noqa: S105 - a throw-away account of a throw-away local gateway
TOKEN_PLAIN = "bench-plain"  # noqa: S105 - the plain client's account
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


# Steps of the send loop timed by the profile: (label, model method or None). The wrappers are
# installed on the registry's classes in the benchmark's worker process only: nothing in the
# product measures itself.
PROFILE_METHODS = (
    ("claim (SELECT ... FOR UPDATE SKIP LOCKED)", "_sms_claim_batch"),
    ("checks (sender, author, company)", "_sms_delivery_error"),
    ("render (bodies, links, opt-out tokens)", "_sms_render_bodies"),
    ("too-long check", "_sms_cancel_too_long"),
    ("balance", "_sms_balance"),
    ("record results (UPDATE ... FROM unnest)", "_sms_record_results"),
    ("materialise next chunk", "_sms_materialize_next"),
    ("commit", "_sms_commit"),
)
STEP_ENCODE = "encode (validate, JSON, parse answer)"
STEP_CALL = "gateway HTTP call (wait for the gateway)"


class StepProfile:
    """Wall time and calls per step, accumulated by wrappers around the steps' functions."""

    def __init__(self):
        self.seconds = {}
        self.calls = {}
        self._restore = []

    def _wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, name, timed)
        self._restore.append((owner, name, original))

    def install(self, env):
        import requests  # Odoo's requirements; the JSON-RPC provider posts with a requests.Session

        from odoo.addons.sms_marketing_ext.tools.providers import jsonrpc

        model_class = type(env["mailing.mailing"])
        for label, name in PROFILE_METHODS:
            self._wrap(model_class, name, label)
        self._wrap(jsonrpc.SmsGatewayApi, "send", "_send")
        self._wrap(requests.Session, "post", STEP_CALL)
        return self

    def uninstall(self):
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore = []

    def steps(self, total_seconds, sent):
        """[{step, seconds, calls, us_per_sms}]: the gateway call's encode part is send - HTTP post;
        'other' is what no wrapper covered (the cron loop, credit arithmetic, ORM reads)."""
        seconds = dict(self.seconds)
        send = seconds.pop("_send", 0.0)
        calls = dict(self.calls)
        calls[STEP_ENCODE] = calls.pop("_send", 0)
        seconds[STEP_ENCODE] = max(send - seconds.get(STEP_CALL, 0.0), 0.0)
        seconds["other (cron loop, credit check, ORM)"] = max(total_seconds - sum(seconds.values()), 0.0)
        return [{"step": step, "seconds": round(value, 3), "calls": calls.get(step, 0),
                 "us_per_sms": round(value / max(sent, 1) * 1e6, 1)}
                for step, value in sorted(seconds.items(), key=lambda item: -item[1])]


def _create_mailing(env, list_id, size, base_url, token, label="", state=None):
    gateway = env["sms.gateway"].create({
        "name": GATEWAY_NAME,
        "provider": "jsonrpc",
        "base_url": base_url,
        "account_token": token,
        "batch_size": 1000,
        "is_default": True,
        "throughput": 0,
    })
    values = {
        "subject": f"{SUBJECT_PREFIX} {size}{label}",
        "mailing_type": "sms",
        "mailing_model_id": env["ir.model"]._get_id("mailing.list"),
        "contact_list_ids": [(6, 0, [list_id])],
        "body_plaintext": f"Spring sale: 20% off this weekend, see {base_url}/promo",
        "sms_allow_unsubscribe": True,
        "sms_gateway_id": gateway.id,
        "sms_sender_id": False,
    }
    mailing = env["mailing.mailing"].create(values)
    if state:
        mailing.write({"state": state, "schedule_date": False})
    return mailing


def _send_until_done(env, mailing):
    runs = 0
    while runs < 10:
        runs += 1
        env["mailing.mailing"]._cron_sms_send(time_budget=3600)
        env.invalidate_all()
        if mailing.state == "done" or mailing.sms_waiting_credit:
            break
    return runs


def setup_worker(db, size, base_url, token, kind):
    """Create and materialise a mailing (committed) for the parallel senders; print its id."""
    def job():
        with benchlib.odoo_env(db) as env:
            list_id = benchlib.find_list(env.cr, kind, size)
            _clean_previous_runs(env)
            mailing = _create_mailing(env, list_id, size, base_url, token, " (parallel)")
            env.cr.commit()
            mailing._sms_start_sending()
            env.cr.commit()
            while mailing.sms_audience_pending:
                mailing._sms_materialize_audience()
                env.cr.commit()
            env.cr.execute("SELECT count(*) FROM mailing_trace WHERE mass_mailing_id = %s "
                           "AND trace_status = 'outgoing'", [mailing.id])
            return {"mailing_id": mailing.id, "outgoing": env.cr.fetchone()[0], "state": mailing.state}

    benchlib.worker_main(job)


def sender_worker(db, mailing_id, start_at):
    """One of several processes running the send cron at once on the same mailing."""
    def job():
        with benchlib.odoo_env(db) as env:
            mailing = env["mailing.mailing"].browse(mailing_id)
            env.cr.rollback()
            while time.time() < start_at:  # all senders start together, once loaded
                time.sleep(0.005)
            started = time.time()
            runs = _send_until_done(env, mailing)
            return {"started": started, "ended": time.time(), "cron_runs": runs}

    benchlib.worker_main(job)


def first_accept_worker(db, size, base_url, token, budget):
    """A due mailing of ``size`` recipients (audience not materialised), one send cron run of
    ``budget`` seconds: prints the wall-clock time the cron started (the orchestrator reads the
    first acceptance from the gateway's store) and how far materialisation got."""
    def job():
        with benchlib.odoo_env(db) as env:
            list_id = benchlib.find_list(env.cr, "audience", size)
            if not list_id:
                raise RuntimeError(f"no audience data set of {size} contacts")
            _clean_previous_runs(env)
            mailing = _create_mailing(env, list_id, size, base_url, token, " (first accept)", state="in_queue")
            env.cr.commit()
            started = time.time()
            env["mailing.mailing"]._cron_sms_send(time_budget=budget)
            ended = time.time()
            env.invalidate_all()
            env.cr.execute("SELECT count(*), count(*) FILTER (WHERE trace_status = 'pending') "
                           "FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
            traces, pending = env.cr.fetchone()
            return {"started": started, "ended": ended, "traces": traces, "sent": pending,
                    "audience_pending": mailing.sms_audience_pending, "state": mailing.state}

    benchlib.worker_main(job)


def worker(db, size, base_url, profiled=True):
    def job():
        with benchlib.odoo_env(db) as env:
            cr = env.cr
            list_id = benchlib.find_list(cr, "send", size)
            if not list_id:
                raise RuntimeError(f"no send data set for {size} contacts: run the orchestrator first")
            _clean_previous_runs(env)
            mailing = _create_mailing(env, list_id, size, base_url, TOKEN)
            cr.commit()
            def materialise_all():
                # The whole audience before the send is timed: the rate is that of sending alone
                # (the cron would otherwise materialise the rest between the timed batches).
                mailing._sms_start_sending()
                cr.commit()
                while mailing.state == "sending" and mailing.sms_audience_pending:
                    mailing._sms_materialize_audience()
                    cr.commit()

            _, materialise = benchlib.measure(materialise_all)
            env.invalidate_all()
            if mailing.state != "sending":
                raise RuntimeError(f"the mailing did not start sending (state {mailing.state}): "
                                   + "; ".join(m.body or "" for m in mailing.message_ids[:1]))
            cr.execute("SELECT count(*) FILTER (WHERE trace_status = 'outgoing'), count(*) "
                       "FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
            outgoing, traces = cr.fetchone()

            profile = StepProfile().install(env) if profiled else None
            try:
                cron_runs, send = benchlib.measure(lambda: _send_until_done(env, mailing))
            finally:
                if profile:
                    profile.uninstall()
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
                "profile": profile.steps(send["seconds"], outgoing) if profile else None,
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

    def add_account(self, token):
        self.cli("account-create", "--token", token, "--name", f"Benchmark {token}", "--credits", "1e9",
                 "--price", str(PRICE), "--country-price", f"FR={FR_PRICE}")

    def first_accept(self, token):
        """The gateway's ``received_at`` of the first message it accepted for ``token`` (epoch s)."""
        import datetime
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
            row = conn.execute("SELECT min(received_at) FROM messages WHERE account_token = ? AND state = 'accepted'",
                               (token,)).fetchone()
        if not row or not row[0]:
            return None
        return datetime.datetime.fromisoformat(row[0].replace("Z", "+00:00")).timestamp()

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

    def stats(self, token=TOKEN):
        with urllib.request.urlopen(f"{self.url}/_admin/stats?token={token}", timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def gateway_own_rate(url, size, token=TOKEN_PLAIN, batch=1000):
    """The local gateway's own rate: a plain client (one keep-alive HTTP session, no Odoo) posts
    ``size`` messages like ours (same text, French mobiles) in batches of ``batch``, each batch
    encoded before the clock starts. Returns {seconds, sms_per_second, accepted}."""
    import requests  # Odoo's requirements: the same HTTP client our provider uses

    content = f"Spring sale: 20% off this weekend, see {url}/promo STOP: {url}/sms/o/abcdefgh12345678"
    bodies = []
    for start in range(0, size, batch):
        messages = [{"uuid": uuid.uuid4().hex, "number": f"+3370{n:08d}", "content": content,
                     "sender": None, "sms_class": "standard"} for n in range(start, min(start + batch, size))]
        bodies.append(json.dumps({"jsonrpc": "2.0", "method": "call", "id": start,
                                  "params": {"messages": messages, "account_token": token}}).encode())
    accepted = 0
    with requests.Session() as session:
        started = time.perf_counter()
        for body in bodies:
            response = session.post(f"{url}/api/sms/1/send", data=body, timeout=60,
                                    headers={"Content-Type": "application/json"})
            response.raise_for_status()
            answer = response.json()
            if "result" not in answer:
                raise RuntimeError(f"the gateway refused the plain client's batch: {answer.get('error')}")
            accepted += sum(1 for item in answer["result"] if item["state"] == "accepted")
        seconds = time.perf_counter() - started
    return {"size": size, "seconds": round(seconds, 3), "sms_per_second": round(size / seconds, 1),
            "accepted": accepted}


def _gateway_summary(stats):
    return {
        "accepted": stats["by_state"].get("accepted", 0),
        "messages": stats["messages"],
        "by_state": stats["by_state"],
        "duplicate_accept_attempts": stats["duplicate_accept_attempts"],
        "presented_total": stats["presented_total"],
        "credits_charged": stats["credits_charged"],
    }


def _delete_bench_traces(db):
    # The traces of earlier send runs go before the timed runs, so that VACUUM clears them.
    benchlib.psql(db, "DELETE FROM mailing_trace WHERE mass_mailing_id IN (SELECT id FROM mailing_mailing "
                      "WHERE subject LIKE 'Benchmark send%')")
    benchlib.vacuum(db)


def run_parallel(db, size, gateway, url, workers, timeout, log=print):
    """``workers`` processes run the send cron at once on the same mailing of ``size``."""
    token = f"{TOKEN}-{workers}w"
    gateway.add_account(token)
    setup = benchlib.run_worker([os.path.abspath(__file__), "--worker", "setup", "--db", db, "--send-size",
                                 str(size), "--base-url", url, "--token", token], timeout)
    if setup.get("error"):
        return {"workers": workers, "error": setup["error"]}
    start_at = time.time() + 20  # time for every process to load Odoo before the common start
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "sender", "--db", db,
           "--mailing", str(setup["mailing_id"]), "--start-at", str(start_at)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,  # noqa: S603
                              start_new_session=True) for _ in range(workers)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        results.append(json.loads(lines[-1]) if lines else {"error": f"crashed: {err.strip()[-300:]}"})
    errors = [r["error"] for r in results if r.get("error")]
    stats = _gateway_summary(gateway.stats(token))
    if errors:
        return {"workers": workers, "error": "; ".join(errors), "gateway": stats}
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {"workers": workers, "size": setup["outgoing"], "seconds": round(seconds, 3),
            "sms_per_second": round(setup["outgoing"] / seconds, 1), "gateway": stats,
            "per_worker": [{"seconds": round(r["ended"] - r["started"], 3), "cron_runs": r["cron_runs"]}
                           for r in results]}


def run_first_accept(db, size, gateway, url, budget, timeout, log=print):
    token = f"{TOKEN}-first"
    gateway.add_account(token)
    result = benchlib.run_worker([os.path.abspath(__file__), "--worker", "first", "--db", db, "--send-size",
                                  str(size), "--base-url", url, "--token", token, "--budget", str(budget)], timeout)
    if result.get("error"):
        return result
    first = gateway.first_accept(token)
    result.update(size=size, budget=budget,
                  first_accept_seconds=round(first - result["started"], 3) if first else None)
    return result


def run(db, size, timeout=1200, log=print, parallel=(2,), first_accept_size=None, first_accept_budget=8):
    """The send benchmark: one worker (profiled), the gateway's own rate, ``parallel`` workers on a
    mailing of the same size, and the first acceptance of a ``first_accept_size`` mailing."""
    with benchlib.odoo_env(db) as env:
        if not benchlib.find_list(env.cr, "send", size):
            log(f"  building the send data set of {size:,} contacts (bulk SQL)")
            benchlib.build_list(env.cr, "send", size, mix=False)
            env.cr.commit()
    _delete_bench_traces(db)
    with tempfile.TemporaryDirectory(prefix="sms_bench_gw_") as workdir:
        gateway = Gateway(workdir)
        url = gateway.start()
        try:
            log(f"  gateway at {url}; sending N={size:,} with 1 worker (profiled) ...")
            result = benchlib.run_worker(
                [os.path.abspath(__file__), "--worker", "single", "--db", db, "--send-size", str(size),
                 "--base-url", url],
                timeout,
            )
            result["gateway"] = _gateway_summary(gateway.stats())
            result.setdefault("size", size)
            log("    " + describe(result))
            gateway.add_account(TOKEN_PLAIN)
            log(f"  the gateway's own rate: a plain client posting {size:,} messages in batches of 1,000 ...")
            result["gateway_own"] = gateway_own_rate(url, size)
            log(f"    {result['gateway_own']['sms_per_second']:,.0f} SMS/s ({result['gateway_own']['seconds']:.2f} s)")
            result["parallel"] = []
            for workers in parallel:
                _delete_bench_traces(db)
                log(f"  {workers} workers running the send cron at once on a new mailing of {size:,} ...")
                row = run_parallel(db, size, gateway, url, workers, timeout, log=log)
                log("    " + (row["error"] if row.get("error") else
                             f"{row['sms_per_second']:,.0f} SMS/s ({row['seconds']:.2f} s), gateway accepted "
                             f"{row['gateway']['accepted']:,}, duplicate_accept_attempts "
                             f"{row['gateway']['duplicate_accept_attempts']}"))
                result["parallel"].append(row)
            if first_accept_size:
                _delete_bench_traces(db)
                log(f"  first acceptance: a due mailing of {first_accept_size:,} recipients, one cron run of "
                    f"{first_accept_budget} s ...")
                row = run_first_accept(db, first_accept_size, gateway, url, first_accept_budget, timeout, log=log)
                log("    " + (row["error"] if row.get("error") else
                             f"first SMS accepted {row['first_accept_seconds']} s after the cron started; "
                             f"{row['traces']:,} traces materialised, {row['sent']:,} sent in the run"))
                result["first_accept"] = row
        finally:
            gateway.stop()
    if first_accept_size:
        _delete_bench_traces(db)  # its traces would slow the next runs' claims
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
    parser.add_argument("--parallel", type=int, nargs="*", default=[2])
    parser.add_argument("--first-accept-size", type=int)
    parser.add_argument("--worker", choices=("single", "setup", "sender", "first"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", default=TOKEN, help=argparse.SUPPRESS)
    parser.add_argument("--mailing", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "single":
        worker(args.db, args.send_size, args.base_url)
    elif args.worker == "setup":
        setup_worker(args.db, args.send_size, args.base_url, args.token, "send")
    elif args.worker == "sender":
        sender_worker(args.db, args.mailing, args.start_at)
    elif args.worker == "first":
        first_accept_worker(args.db, args.send_size, args.base_url, args.token, args.budget)
    else:
        print(json.dumps(run(args.db, args.send_size, parallel=args.parallel,
                             first_accept_size=args.first_accept_size), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
