"""Audience preparation: stock Odoo 17's composer path against sms_marketing_ext's set-based SQL.

For each size N, a mailing list of N French contacts (~2% invalid numbers, ~2% duplicates, ~1%
blacklisted) is built once with bulk SQL. Each measurement then runs in a fresh process and a
fresh transaction that is rolled back:

* stock:       what mass_mailing_sms's ``action_send_sms`` does when it is not given ids:
               ``_get_remaining_recipients()``, then ``sms.composer`` (mass mode, ``res_ids=repr(ids)``)
               ``._action_send_sms()``, which creates the sms.sms and mailing.trace records;
* summary:     ``mailing._sms_audience_summary()`` (one aggregate query);
* materialize: ``mailing._sms_materialize_audience()`` (the traces, in SQL).

Usage (normally through benchmarks/run):
    python benchmarks/bench_audience.py --db sms_ext_bench --sizes 10000 100000
    python benchmarks/bench_audience.py --worker materialize --db sms_ext_bench --size 10000
"""

import argparse
import contextlib
import os
import sys
import time

import benchlib

BODY = "Spring sale: 20% off everything this weekend in all our shops. See you soon!"
MODES = ("stock", "stock_unlimited", "summary", "materialize")
WORKER_MODES = (*MODES, "explain")
# stock_unlimited: the stock path with Odoo's 100 KiB literal_eval limit raised through its
# ODOO_LIMIT_LITEVAL_BUFFER environment variable, to see how stock scales past ~14k recipients.
UNLIMITED_ENV = {"ODOO_LIMIT_LITEVAL_BUFFER": str(10**9)}


# ------------------------------------------------------------------------------------------------
# Worker: one measurement in this process
# ------------------------------------------------------------------------------------------------

def _new_mailing(env, list_id, label):
    return env["mailing.mailing"].create({
        "subject": f"Benchmark audience {label}",
        "mailing_type": "sms",
        "mailing_model_id": env["ir.model"]._get_id("mailing.list"),
        "contact_list_ids": [(6, 0, [list_id])],
        "body_plaintext": BODY,
        "sms_allow_unsubscribe": True,
    })


def _stock_prepare(mailing):
    """Exactly what stock mass_mailing_sms ``action_send_sms(res_ids=None)`` does for one
    mailing (our override only replaces the call without ids, so it is spelled out here)."""
    env = mailing.env
    res_ids = mailing._get_remaining_recipients()
    if res_ids:
        composer = env["sms.composer"].with_context(active_id=False).create(
            mailing._send_sms_get_composer_values(res_ids)
        )
        composer._action_send_sms()
    env.flush_all()
    return len(res_ids)


def _node_label(node):
    label = node["Node Type"]
    for key in ("Relation Name", "Function Name", "CTE Name"):
        if node.get(key):
            label += f" on {node[key]}"
    for key in ("Join Filter", "Hash Cond", "Filter", "Sort Key"):
        if node.get(key):
            detail = node[key] if isinstance(node[key], str) else ", ".join(node[key])
            label += f" [{key}: {detail[:110]}]"
            break
    return label


def _plan_digest(plan, top=4):
    """Execution time and the plan nodes of highest own time (node total x loops - children)."""
    nodes = []

    def walk(node):
        children = node.get("Plans", [])
        own = node.get("Actual Total Time", 0) * node.get("Actual Loops", 1) - sum(
            child.get("Actual Total Time", 0) * child.get("Actual Loops", 1) for child in children)
        nodes.append((max(own, 0.0), node))
        for child in children:
            walk(child)

    walk(plan["Plan"])
    nodes.sort(key=lambda item: -item[0])
    return [{"own_ms": round(own, 1), "rows_removed": node.get("Rows Removed by Join Filter", 0),
             "node": _node_label(node)} for own, node in nodes[:top]]


def _explain_materialize(mailing):
    """EXPLAIN ANALYZE of the very INSERT statements ``_sms_materialize_audience()`` issues: the
    cursor is wrapped for one call so that each ``INSERT INTO mailing_trace`` runs as
    ``EXPLAIN (ANALYZE, FORMAT JSON) INSERT ...`` (which executes it). Returns the summed execution
    time, the trigger (foreign key) times and the costliest plan nodes of the largest chunk."""
    from odoo.tools import SQL  # Odoo is on sys.path only once benchlib loaded it

    cr = mailing.env.cr
    original = cr.execute
    plans = []

    def execute(query, params=None, log_exceptions=True):
        if isinstance(query, SQL):
            query, params = query.code, query.params
        if query.lstrip().upper().startswith("INSERT INTO MAILING_TRACE"):
            original("EXPLAIN (ANALYZE, FORMAT JSON) " + query, params, log_exceptions)
            plans.append(cr.fetchone()[0][0])
            return None
        return original(query, params, log_exceptions)

    cr.execute = execute
    started = time.perf_counter()
    try:
        mailing.with_context(sms_ext_no_commit=True)._sms_materialize_audience()
    finally:
        del cr.execute
    seconds = time.perf_counter() - started
    triggers = {}
    for plan in plans:
        for trigger in plan.get("Triggers", []):
            name = trigger.get("Constraint Name") or trigger.get("Trigger Name")
            entry = triggers.setdefault(name, {"name": name, "ms": 0.0, "calls": 0})
            entry["ms"] = round(entry["ms"] + trigger.get("Time", 0.0), 1)
            entry["calls"] += trigger.get("Calls", 0)
    largest = max(plans, key=lambda plan: plan["Execution Time"]) if plans else None
    return {
        "seconds": round(seconds, 2),
        "statements": len(plans),
        "execution_ms": round(sum(plan["Execution Time"] for plan in plans), 1),
        "triggers": sorted(triggers.values(), key=lambda t: -t["ms"])[:4],
        "top_nodes": _plan_digest(largest) if largest else [],
    }


@contextlib.contextmanager
def _capture_inserts(cr):
    """Record the (code, params) of every ``INSERT INTO mailing_trace`` executed on ``cr`` (a
    prefix test per statement: no measurable cost)."""
    from odoo.tools import SQL  # Odoo is on sys.path only once benchlib loaded it

    original = cr.execute
    captured = []

    def execute(query, params=None, log_exceptions=True):
        code, args = (query.code, query.params) if isinstance(query, SQL) else (query, params)
        if isinstance(code, str) and code.lstrip()[:25].upper() == "INSERT INTO MAILING_TRACE":
            captured.append((code, args))
        return original(query, params, log_exceptions)

    cr.execute = execute
    try:
        yield captured
    finally:
        del cr.execute


def _floor(cr, inserts):
    """Run ``inserts`` into ``bench_floor`` (``LIKE mailing_trace INCLUDING DEFAULTS``: the
    columns, their defaults and NOT NULL, no index, no unique, no foreign key, no check), with the
    same session setting as ours (JIT off); return {seconds, rows, statements}."""
    cr.execute("CREATE TEMP TABLE bench_floor (LIKE mailing_trace INCLUDING DEFAULTS)")
    cr.execute("SET LOCAL jit = off")
    rows = 0
    started = time.perf_counter()
    for code, params in inserts:
        head, rest = code.split("mailing_trace", 1)
        cr.execute(head + "bench_floor" + rest, params)
        rows += cr.rowcount
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "rows": rows, "statements": len(inserts)}


def explain(mailing):
    """Where PostgreSQL spends the time: the summary's audience query timed with JIT on and off,
    its EXPLAIN ANALYZE (JIT off, so compile time does not blur the nodes), then EXPLAIN ANALYZE of
    the INSERTs of ``_sms_materialize_audience()``."""
    from odoo.tools import SQL  # Odoo is on sys.path only once benchlib loaded it

    cr = mailing.env.cr
    sql = mailing._sms_audience_sql()
    timings = {}
    for jit in ("on", "off"):
        cr.execute("SAVEPOINT bench_jit")
        cr.execute(f"SET LOCAL jit = {jit}")
        started = time.perf_counter()
        cr.execute(SQL("SELECT a.failure_type, a.country, count(*) FROM (%s) a GROUP BY 1, 2", sql))
        cr.fetchall()
        timings[jit] = round(time.perf_counter() - started, 2)
        if jit == "off":
            cr.execute(SQL("EXPLAIN (ANALYZE, FORMAT JSON) SELECT a.failure_type, a.country, count(*) "
                           "FROM (%s) a GROUP BY 1, 2", sql))
            plan = cr.fetchone()[0][0]
        cr.execute("ROLLBACK TO SAVEPOINT bench_jit")
    return {
        "seconds_jit_on": timings["on"],
        "seconds_jit_off": timings["off"],
        "execution_ms": round(plan["Execution Time"], 1),
        "top_nodes": _plan_digest(plan),
        "materialize": _explain_materialize(mailing),
    }


def worker(mode, db, size):
    def job():
        with benchlib.odoo_env(db) as env:
            cr = env.cr
            list_id = benchlib.find_list(cr, "audience", size)
            if not list_id:
                raise RuntimeError(f"no data set for {size} contacts: run the orchestrator first")
            benchlib.activate_blacklist(cr, list_id)
            mailing = _new_mailing(env, list_id, f"{mode} {size}")
            env.flush_all()
            if mode in ("stock", "stock_unlimited"):
                recipients, stats = benchlib.measure(lambda: _stock_prepare(mailing))
                cr.execute("SELECT count(*), count(*) FILTER (WHERE trace_status = 'outgoing') "
                           "FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
                traces, outgoing = cr.fetchone()
                cr.execute("SELECT count(*) FROM sms_sms WHERE mailing_id = %s", [mailing.id])
                stats.update(recipients=recipients, traces=traces, outgoing=outgoing, sms=cr.fetchone()[0])
            elif mode == "explain":
                stats = explain(mailing)
            elif mode == "summary":
                summary, stats = benchlib.measure(mailing._sms_audience_summary)
                stats.update(recipients=summary["total"], outgoing=summary["valid"],
                             summary={k: v for k, v in summary.items() if k != "countries"})
            else:
                cr.execute("SAVEPOINT bench_ours")
                with _capture_inserts(cr) as inserts:
                    # One transaction (no commit per chunk, else nothing could be rolled back
                    # for the floor below); the statements are those of production.
                    created, stats = benchlib.measure(
                        mailing.with_context(sms_ext_no_commit=True)._sms_materialize_audience)
                cr.execute("SELECT count(*) FILTER (WHERE trace_status = 'outgoing'), "
                           "count(*) FILTER (WHERE trace_status = 'cancel') "
                           "FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
                outgoing, canceled = cr.fetchone()
                stats.update(recipients=outgoing + canceled, traces=outgoing + canceled, outgoing=outgoing,
                             created=created)
                # Opening the mailing's statistics (issue "Links, opt-out and analytics": under a
                # second at a million recipients): the aggregates the form reads, from cold caches.
                mailing.invalidate_recordset()
                started = time.perf_counter()
                mailing.read(["sms_stat_recipients", "sms_stat_sent", "sms_stat_delivered", "sms_stat_failed",
                              "sms_stat_clicked", "sms_stat_optouts", "sms_stat_credits", "received_ratio",
                              "clicks_ratio"])
                stats["statistics_seconds"] = round(time.perf_counter() - started, 3)
                # The floor (issue 14 §2): the same INSERT ... SELECT statements, with the same
                # parameters, into a copy of mailing_trace without indexes or constraints, on the
                # state before ours ran (rolled back to the savepoint).
                cr.execute("ROLLBACK TO SAVEPOINT bench_ours")
                stats["floor"] = _floor(cr, inserts)
            cr.rollback()
            return stats

    benchlib.worker_main(job)


# ------------------------------------------------------------------------------------------------
# Orchestrator
# ------------------------------------------------------------------------------------------------

def build_datasets(db, sizes, log=print):
    """Create the missing ``bench-audience-<N>`` lists (committed); return {N: composition}."""
    compositions = {}
    with benchlib.odoo_env(db) as env:
        for size in sizes:
            if not benchlib.find_list(env.cr, "audience", size):
                log(f"  building the audience data set of {size:,} contacts (bulk SQL)")
                benchlib.build_list(env.cr, "audience", size, mix=True)
                env.cr.commit()
            list_id = benchlib.find_list(env.cr, "audience", size)
            compositions[size] = benchlib.list_composition(env.cr, list_id)
    return compositions


def run_one(db, mode, size, timeout, extra_env=None):
    args = [os.path.abspath(__file__), "--worker", mode, "--db", db, "--size", str(size)]
    saved = {key: os.environ.get(key) for key in extra_env or {}}
    os.environ.update(extra_env or {})
    try:
        return benchlib.run_worker(args, timeout)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(db, sizes, stock_sizes, stock_timeout=600, ours_timeout=900, unlimited_sizes=(), log=print):
    """Measure every mode at every size; return a list of result rows."""
    wanted = {"stock": set(stock_sizes), "stock_unlimited": set(unlimited_sizes),
              "summary": set(sizes), "materialize": set(sizes)}
    all_sizes = sorted(set().union(*wanted.values()))
    compositions = build_datasets(db, all_sizes, log=log)
    # Measurements roll back; a mailing committed by an interrupted or older run would make its
    # numbers look sent already.
    benchlib.psql(db, "DELETE FROM mailing_trace WHERE mass_mailing_id IN (SELECT id FROM mailing_mailing "
                      "WHERE subject LIKE 'Benchmark audience %'); "
                      "DELETE FROM mailing_mailing WHERE subject LIKE 'Benchmark audience %'")
    benchlib.vacuum(db)
    rows = []
    for size in all_sizes:
        for mode in MODES:
            if size not in wanted[mode]:
                continue
            log(f"  {mode:<15} N={size:>9,} ...")
            stock = mode.startswith("stock")
            result = run_one(db, mode, size, stock_timeout if stock else ours_timeout,
                             UNLIMITED_ENV if mode == "stock_unlimited" else None)
            result.update(mode=mode, size=size, composition=compositions[size])
            log("    " + describe(result))
            rows.append(result)
    return rows


def describe(row):
    if row.get("error"):
        after = f" (after {row['seconds']} s)" if row.get("seconds") is not None else ""
        return (f"failed: {row['error']}" if not row.get("timeout") else row["error"]) + after
    return (f"{row['seconds']:.2f} s, {row['seconds'] / row['size'] * 1e6:.1f} us/recipient, "
            f"+{row['rss_growth_mb']:.0f} MB RSS, {row['queries']} queries, {row.get('outgoing')} outgoing")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=benchlib.DEFAULT_DB)
    parser.add_argument("--worker", choices=WORKER_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stock-sizes", type=int, nargs="+", default=[10_000, 15_000, 100_000, 1_000_000])
    parser.add_argument("--stock-timeout", type=float, default=600)
    parser.add_argument("--unlimited-sizes", type=int, nargs="*", default=[100_000])
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.db, args.size)
        return 0
    for row in run(args.db, args.sizes, args.stock_sizes, args.stock_timeout, unlimited_sizes=args.unlimited_sizes):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
