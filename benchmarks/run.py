"""Benchmarks of sms_marketing_ext against stock Odoo 17, measured in the same run.

Builds (or reuses) the benchmark database, runs the audience benchmark (bench_audience.py) and
the sending benchmark (bench_send.py), prints a summary with PASS/FAIL per target and writes
benchmarks/RESULTS.md. Normally started through ``benchmarks/run`` (which finds Odoo,
PostgreSQL and the template database with scripts/lib.sh).
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import bench_audience
import bench_import
import bench_send
import benchlib

HERE = Path(__file__).resolve().parent

# Targets (issues "Audience" and "Delivery").
TARGET_SPEEDUP = 10  # ours per recipient at 100k vs stock per recipient at its largest working size
TARGET_1M_SECONDS = 120
TARGET_RSS_MB = 150
TARGET_SMS_PER_SECOND = 5000
TARGET_STATISTICS_SECONDS = 0.5  # opening a 1M-recipient mailing's statistics (issue 14 §2)
# Issue 14 (scale), ratios measured in the same run:
TARGET_FIRST_ACCEPT_SECONDS = 5  # send cron start -> first SMS accepted by the gateway, 1M recipients
TARGET_FLOOR_RATIO = 2.0  # materialising 1M <= 2x the same INSERT ... SELECT into an unindexed copy
TARGET_GATEWAY_SHARE = 0.33  # one worker's rate / the gateway's own rate (plain client, batches of 1,000)
TARGET_PARALLEL_RATIO = 1.8  # 2 workers / 1 worker on the same 100k mailing
# Number import (issue 11, "Files from users"): flat memory and time at 1M lines.
TARGET_IMPORT_1M_SECONDS = 60  # preview and import of a 1,000,000-line file, each
TARGET_IMPORT_RSS_MB = 300  # peak RSS growth of the preview and of the import, at any size
TARGET_IMPORT_RSS_RATIO = 1.5  # RSS growth at 1M / at 100k: flat, not proportional to the file

# Stock's sending ceiling, from its cron definitions (computed; stock sends through Odoo IAP).
STOCK_SMS_CRON_PER_RUN = 10_000  # sms.sms _process_queue(): search(..., limit=10000)
STOCK_SMS_CRON_INTERVAL_S = 3600  # sms/data/ir_cron_data.xml: ir_cron_sms_scheduler_action, 1 hour


def log(message):
    print(message, flush=True)


# ------------------------------------------------------------------------------------------------
# Benchmark database
# ------------------------------------------------------------------------------------------------

def addon_fingerprint():
    """Hash of the addon's files: the database is updated (-u) when the addon changed."""
    digest = hashlib.sha1()  # noqa: S324 - a change detector, not security
    for path in sorted((benchlib.REPO_ROOT / benchlib.ADDON).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(benchlib.REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def odoo_bin(*args):
    cmd = benchlib.odoo_bin_cmd(*args, "--stop-after-init", "--workers=0", "--max-cron-threads=0",
                                "--log-level=warn", "--no-http")
    benchlib.sh(cmd, stdout=subprocess.DEVNULL)


def ensure_database(db, template, reset):
    fingerprint = addon_fingerprint()
    if reset and benchlib.db_exists(db):
        log(f"==> dropping {db}")
        benchlib.sh(benchlib.command("dropdb", "-U", benchlib.db_user(), "--if-exists", db))
    if not benchlib.db_exists(db):
        if not template:
            raise SystemExit(f"{db} does not exist and no --template was given (use benchmarks/run)")
        log(f"==> creating {db} from {template} and installing {benchlib.ADDON}")
        for attempt in range(5):
            done = benchlib.sh(benchlib.command("createdb", "-U", benchlib.db_user(), "-T", template, db),
                               check=False, capture_output=True, text=True)
            if done.returncode == 0:
                break
            if attempt == 4:
                raise SystemExit(f"createdb failed: {done.stderr.strip()}")
            time.sleep(3)  # the template is busy (another createdb from it): try again
        odoo_bin("-d", db, "-i", benchlib.ADDON)
    else:
        current = benchlib.psql(db, "SELECT value FROM ir_config_parameter WHERE key = 'sms_ext_bench.addon'")
        if current != fingerprint:
            log(f"==> {benchlib.ADDON} changed since {db} was built: updating it")
            odoo_bin("-d", db, "-u", benchlib.ADDON)
    upsert = ("INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date) "
              "VALUES ('sms_ext_bench.addon', '%s', 1, 1, now(), now()) "
              "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
    benchlib.psql(db, upsert % fingerprint)  # a hex digest


# ------------------------------------------------------------------------------------------------
# Machine facts
# ------------------------------------------------------------------------------------------------

def machine_facts(db):
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    settings = benchlib.psql(db, "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' "
                                 "ORDER BY name) FROM pg_settings WHERE name IN "
                                 "('shared_buffers', 'work_mem', 'synchronous_commit', 'max_wal_size')")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "postgresql": benchlib.psql(db, "SHOW server_version"),
        "pg_settings": settings,
        "python": platform.python_version(),
        "odoo": benchlib.psql(db, "SELECT latest_version FROM ir_module_module WHERE name = 'base'"),
        "kernel": platform.release(),
        "git": benchlib.sh(benchlib.command("git", "-C", str(benchlib.REPO_ROOT), "rev-parse", "--short", "HEAD"),
                           check=False, capture_output=True, text=True).stdout.strip(),
    }


# ------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------

def per_recipient_us(row):
    return row["seconds"] / row["size"] * 1e6


def verdicts(audience_rows, send_result, sizes):
    """[(target, status PASS/FAIL/N/A, what was measured)]."""
    out = []
    ok = lambda rows: [r for r in rows if not r.get("error")]  # noqa: E731
    stock = ok([r for r in audience_rows if r["mode"] == "stock"])
    ours = {r["size"]: r for r in ok(audience_rows) if r["mode"] == "materialize"}
    summaries = {r["size"]: r for r in ok(audience_rows) if r["mode"] == "summary"}
    failed = [r for r in audience_rows if r.get("error") and not r["mode"].startswith("stock")]

    if not audience_rows:
        return out + send_verdicts(send_result)
    # 1. 10x faster per recipient at 100k (or the largest size measured in this run).
    target_size = 100_000 if 100_000 in ours else (max(ours) if ours else None)
    if stock and target_size:
        best_stock = max(stock, key=lambda r: r["size"])
        ratio = per_recipient_us(best_stock) / per_recipient_us(ours[target_size])
        note = "" if target_size == 100_000 else f" (100k not in this run: measured at {target_size:,})"
        out.append((
            f"ours prepares {target_size:,} recipients >= {TARGET_SPEEDUP}x faster per recipient than stock",
            "PASS" if ratio >= TARGET_SPEEDUP else "FAIL",
            f"stock {per_recipient_us(best_stock):.1f} us/recipient at {best_stock['size']:,} (largest size "
            f"where stock runs), ours {per_recipient_us(ours[target_size]):.2f} us/recipient "
            f"(materialise) = {ratio:.0f}x{note}",
        ))
    else:
        out.append((f"ours >= {TARGET_SPEEDUP}x faster per recipient than stock", "N/A",
                    "stock did not run at any size" if not stock else "ours not measured"))

    # 2. 1M in under 2 minutes.
    if 1_000_000 in ours:
        seconds = ours[1_000_000]["seconds"]
        out.append((f"1M recipients materialised in < {TARGET_1M_SECONDS} s",
                    "PASS" if seconds < TARGET_1M_SECONDS else "FAIL", f"{seconds:.1f} s"))
    elif 1_000_000 in sizes:
        out.append((f"1M recipients materialised in < {TARGET_1M_SECONDS} s", "FAIL",
                    next((r["error"] for r in failed if r["size"] == 1_000_000), "not measured")))
    else:
        out.append((f"1M recipients materialised in < {TARGET_1M_SECONDS} s", "N/A", "1M not in this run"))

    # Statistics of the largest materialised mailing open in under a second.
    with_stats = [r for r in ours.values() if "statistics_seconds" in r]
    if with_stats:
        largest = max(with_stats, key=lambda r: r["size"])
        seconds = largest["statistics_seconds"]
        out.append((f"statistics of a {largest['size']:,}-recipient mailing in < {TARGET_STATISTICS_SECONDS:.1f} s",
                    "PASS" if seconds < TARGET_STATISTICS_SECONDS else "FAIL", f"{seconds:.3f} s"))

    # Close to the floor: ours at the largest size <= 2x the same INSERT ... SELECT into an
    # unindexed, unconstrained copy of mailing_trace, measured in the same process.
    with_floor = [r for r in ours.values() if r.get("floor")]
    if with_floor:
        largest = max(with_floor, key=lambda r: r["size"])
        ratio = largest["seconds"] / largest["floor"]["seconds"]
        out.append((f"materialising {largest['size']:,} <= {TARGET_FLOOR_RATIO:.0f}x the floor (same INSERT ... "
                    "SELECT into an unindexed copy of mailing_trace)",
                    "PASS" if ratio <= TARGET_FLOOR_RATIO else "FAIL",
                    f"ours {largest['seconds']:.1f} s, floor {largest['floor']['seconds']:.1f} s "
                    f"({largest['floor']['rows']:,} rows) = {ratio:.2f}x"))

    # 3. Memory growth under 150 MB whatever N (ours: summary and materialise).
    measured = list(ours.values()) + list(summaries.values())
    if measured:
        worst = max(measured, key=lambda r: r["rss_growth_mb"])
        out.append((f"ours: RSS growth < {TARGET_RSS_MB} MB at every size",
                    "PASS" if worst["rss_growth_mb"] < TARGET_RSS_MB and not failed else "FAIL",
                    f"worst +{worst['rss_growth_mb']:.0f} MB ({worst['mode']}, N={worst['size']:,})"))

    return out + send_verdicts(send_result)


def import_verdicts(import_rows):
    """[(target, status, measured)] of the number import: time at 1M, memory growth, flatness."""
    if not import_rows:
        return []
    out = []
    ok = {r["size"]: r for r in import_rows if not r.get("error")}
    failed = [r for r in import_rows if r.get("error")]
    steps = ("preview", "import")
    if 1_000_000 in ok:
        row = ok[1_000_000]
        slowest = max(row[step]["seconds"] for step in steps)
        out.append((f"import of 1M lines: preview and import each in <= {TARGET_IMPORT_1M_SECONDS} s",
                    "PASS" if slowest <= TARGET_IMPORT_1M_SECONDS else "FAIL",
                    f"preview {row['preview']['seconds']:.1f} s, import {row['import']['seconds']:.1f} s"))
    else:
        out.append((f"import of 1M lines: preview and import each in <= {TARGET_IMPORT_1M_SECONDS} s",
                    "FAIL" if any(r["size"] == 1_000_000 for r in failed) else "N/A",
                    next((r["error"] for r in failed if r["size"] == 1_000_000), "1M not in this run")))
    if ok:
        worst = max((r[step]["rss_growth_mb"], step, r["size"]) for r in ok.values() for step in steps)
        out.append((f"import: RSS growth <= {TARGET_IMPORT_RSS_MB} MB at every size",
                    "PASS" if worst[0] <= TARGET_IMPORT_RSS_MB and not failed else "FAIL",
                    f"worst +{worst[0]:.0f} MB ({worst[1]}, N={worst[2]:,})"))
    if 100_000 in ok and 1_000_000 in ok:
        small = max(ok[100_000][step]["rss_growth_mb"] for step in steps)
        large = max(ok[1_000_000][step]["rss_growth_mb"] for step in steps)
        ratio = large / max(small, 1.0)
        out.append((f"import: flat memory, RSS growth at 1M <= {TARGET_IMPORT_RSS_RATIO}x that at 100k",
                    "PASS" if ratio <= TARGET_IMPORT_RSS_RATIO else "FAIL",
                    f"+{large:.0f} MB at 1M vs +{small:.0f} MB at 100k = {ratio:.2f}x"))
    return out


def import_table(rows):
    lines = ["| N lines | step | result | wall time | RSS growth | SQL queries |", "|---:|---|---|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: r["size"]):
        if row.get("error"):
            lines.append(f"| {row['size']:,} | preview + import | **failed**: {row['error'].replace('|', '/')} | | | |")
            continue
        for step in ("preview", "import"):
            data = row[step]
            lines.append(f"| {row['size']:,} | `action_{step}()` | ok | {data['seconds']:.2f} s | "
                         f"{data['rss_growth_mb']:.0f} MB | {data['queries']:,} |")
    return lines


def send_verdicts(send_result):
    out = []
    if send_result and not send_result.get("error"):
        rate = send_result["outgoing_before"] / send_result["send"]["seconds"]
        overall = send_result["size"] / (send_result["send"]["seconds"] + send_result["materialise"]["seconds"])
        gateway = send_result["gateway"]
        exact = gateway["accepted"] == send_result["size"] and gateway["duplicate_accept_attempts"] == 0
        out.append((f"sending >= {TARGET_SMS_PER_SECOND:,} SMS/s end to end",
                    "PASS" if rate >= TARGET_SMS_PER_SECOND else "FAIL",
                    f"{rate:,.0f} SMS/s over {send_result['outgoing_before']:,} SMS (send cron); "
                    f"{overall:,.0f} SMS/s including materialisation"))
        out.append(("gateway accepted exactly N, duplicate_accept_attempts == 0",
                    "PASS" if exact else "FAIL",
                    f"accepted {gateway['accepted']:,} of N={send_result['size']:,}, "
                    f"duplicate_accept_attempts {gateway['duplicate_accept_attempts']}"))
        own = send_result.get("gateway_own")
        if own:
            share = rate / own["sms_per_second"]
            out.append((f"one worker >= {TARGET_GATEWAY_SHARE:.0%} of the gateway's own rate",
                        "PASS" if share >= TARGET_GATEWAY_SHARE else "FAIL",
                        f"ours {rate:,.0f} SMS/s, plain client {own['sms_per_second']:,.0f} SMS/s = {share:.0%}"))
        for row in send_result.get("parallel") or []:
            workers = row["workers"]
            if row.get("error"):
                out.append((f"{workers} workers >= {TARGET_PARALLEL_RATIO}x one", "FAIL", row["error"][:200]))
                continue
            ratio = row["sms_per_second"] / rate
            out.append((f"{workers} workers on the same {row['size']:,} mailing >= {TARGET_PARALLEL_RATIO}x one",
                        "PASS" if ratio >= TARGET_PARALLEL_RATIO else "FAIL",
                        f"{row['sms_per_second']:,.0f} SMS/s vs {rate:,.0f} SMS/s = {ratio:.2f}x"))
            gw = row["gateway"]
            exact = gw["accepted"] == row["size"] and gw["duplicate_accept_attempts"] == 0
            out.append((f"{workers} workers: gateway accepted exactly N, duplicate_accept_attempts == 0",
                        "PASS" if exact else "FAIL",
                        f"accepted {gw['accepted']:,} of N={row['size']:,}, duplicate_accept_attempts "
                        f"{gw['duplicate_accept_attempts']}"))
    elif send_result:
        out.append((f"sending >= {TARGET_SMS_PER_SECOND:,} SMS/s end to end", "FAIL", send_result["error"]))
    first = (send_result or {}).get("first_accept")
    if first:
        target = (f"first SMS accepted <= {TARGET_FIRST_ACCEPT_SECONDS} s after the send cron starts "
                  f"({first.get('size', 0):,} recipients)")
        seconds = first.get("first_accept_seconds")
        if first.get("error") or seconds is None:
            out.append((target, "FAIL", first.get("error") or "nothing accepted during the run"))
        else:
            out.append((target, "PASS" if seconds <= TARGET_FIRST_ACCEPT_SECONDS else "FAIL",
                        f"{seconds:.2f} s; in its {first['budget']:.0f} s run: {first['traces']:,} traces "
                        f"materialised, {first['sent']:,} SMS sent, audience still pending: "
                        f"{first['audience_pending']}"))
    return out


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

MODE_LABEL = {
    "stock": "stock: `_get_remaining_recipients` + `sms.composer._action_send_sms`",
    "stock_unlimited": "stock, literal_eval limit raised (`ODOO_LIMIT_LITEVAL_BUFFER`)",
    "summary": "ours: `_sms_audience_summary()`",
    "materialize": "ours: `_sms_materialize_audience()`",
}


def audience_table(rows):
    lines = ["| N | path | result | wall time | per recipient | RSS growth | SQL queries | traces (outgoing) |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: (r["size"], list(MODE_LABEL).index(r["mode"]))):
        label = MODE_LABEL[row["mode"]]
        if row.get("error"):
            result = "timeout" if row.get("timeout") else "failed"
            detail = row["error"].replace("|", "/")
            seconds = f"{row['seconds']:.2f} s" if row.get("seconds") is not None else ""
            lines.append(f"| {row['size']:,} | {label} | **{result}**: {detail} | {seconds} | | | | |")
            continue
        traces = ""
        if row["mode"] == "summary":
            traces = f"(would send {row['outgoing']:,})"
        elif row.get("traces") is not None:
            traces = f"{row['traces']:,} ({row['outgoing']:,})"
        lines.append(
            f"| {row['size']:,} | {label} | ok | {row['seconds']:.2f} s | {per_recipient_us(row):.2f} us | "
            f"{row['rss_growth_mb']:.0f} MB | {row['queries']:,} | {traces} |"
        )
    return lines


def ratio_lines(rows):
    """Ratios stock / ours at each size where both ran (per recipient: at equal N, the same)."""
    stock = {r["size"]: r for r in rows if r["mode"] == "stock" and not r.get("error")}
    ours = {r["size"]: r for r in rows if r["mode"] == "materialize" and not r.get("error")}
    lines = []
    for size in sorted(ours):
        if size in stock:
            speedup = stock[size]["seconds"] / ours[size]["seconds"]
            lines.append(f"- N={size:,}: stock / ours (materialise) = {speedup:.0f}x "
                         f"wall time, {stock[size]['queries'] / max(ours[size]['queries'], 1):.0f}x queries, "
                         f"RSS growth {stock[size]['rss_growth_mb']:.0f} MB vs {ours[size]['rss_growth_mb']:.0f} MB")
    if stock and ours:
        best = max(stock.values(), key=lambda r: r["size"])
        for size in sorted(ours):
            lines.append(f"- per recipient, ours at N={size:,} vs stock at N={best['size']:,} (largest where stock "
                         f"runs): {per_recipient_us(best) / per_recipient_us(ours[size]):.1f}x")
    for size in sorted(ours):
        row = ours[size]
        if row.get("floor"):
            lines.append(f"- N={size:,}: ours (materialise) / floor = {row['seconds']:.2f} s / "
                         f"{row['floor']['seconds']:.2f} s = {row['seconds'] / row['floor']['seconds']:.2f}x (floor: "
                         f"the same {row['floor']['statements']} INSERT ... SELECT statement(s) into a "
                         "`LIKE mailing_trace INCLUDING DEFAULTS` temporary table: no index, no constraint, no "
                         f"foreign key, {row['floor']['rows']:,} rows, run after ours on warm caches); statistics "
                         f"of the mailing {row.get('statistics_seconds', 0):.3f} s")
    unlimited = {r["size"]: r for r in rows if r["mode"] == "stock_unlimited" and not r.get("error")}
    for size in sorted(unlimited):
        if size in ours:
            lines.append(f"- N={size:,}, stock with the literal_eval limit raised / ours (materialise) = "
                         f"{unlimited[size]['seconds'] / ours[size]['seconds']:.0f}x wall time, RSS growth "
                         f"{unlimited[size]['rss_growth_mb']:.0f} MB vs {ours[size]['rss_growth_mb']:.0f} MB "
                         "(not a stock default: for scale only)")
    return lines


def stock_ceiling():
    per_second = STOCK_SMS_CRON_PER_RUN / STOCK_SMS_CRON_INTERVAL_S
    return per_second, (
        f"stock's queue: cron `sms.ir_cron_sms_scheduler_action` runs every hour "
        f"(sms/data/ir_cron_data.xml) and `sms.sms._process_queue()` takes at most "
        f"{STOCK_SMS_CRON_PER_RUN:,} SMS per run, so at most {STOCK_SMS_CRON_PER_RUN:,} SMS/hour = "
        f"{per_second:.2f} SMS/s (the mass-mailing cron `mass_mailing.ir_cron_mass_mailing_queue`, daily and "
        f"triggered on Send, only creates the sms.sms rows). **Computed, not measured**: stock sends through "
        f"Odoo IAP, which is not reachable here."
    )


def _node_rows(nodes):
    rows = ["| own time | rows removed by join filter | node |", "|---:|---:|---|"]
    for node in nodes:
        label = node["node"].replace("|", "/")
        rows.append(f"| {node['own_ms'] / 1000:.2f} s | {node['rows_removed']:,} | `{label}` |")
    return rows


def explain_lines(explain):
    if not explain:
        return []
    if explain.get("error"):
        return ["", f"EXPLAIN ANALYZE failed: {explain['error']}"]
    lines = [
        "",
        f"### Where the time goes at N={explain['size']:,} (EXPLAIN ANALYZE, measured in this run)",
        "",
        f"- The audience query of `_sms_audience_summary()` (`_sms_audience_sql()`): {explain['seconds_jit_on']:.2f} s "
        f"with PostgreSQL's JIT on (the server default), {explain['seconds_jit_off']:.2f} s with `jit = off`. "
        f"EXPLAIN ANALYZE with `jit = off`: {explain['execution_ms'] / 1000:.2f} s; plan nodes with the highest own "
        "time (node total x loops - children; parallel nodes summed over workers):",
        "",
        *_node_rows(explain["top_nodes"]),
    ]
    mat = explain.get("materialize")
    if mat:
        lines += [
            "",
            f"- `_sms_materialize_audience()` with its `INSERT INTO mailing_trace` statements ({mat['statements']}) "
            f"run under EXPLAIN ANALYZE: {mat['seconds']:.2f} s in all, {mat['execution_ms'] / 1000:.2f} s "
            "inside the INSERTs. Foreign-key and other triggers: "
            + (", ".join(f"`{t['name']}` {t['ms'] / 1000:.2f} s ({t['calls']:,} calls)" for t in mat["triggers"])
               or "none") + ". Costliest nodes of the largest INSERT:",
            "",
            *_node_rows(mat["top_nodes"]),
        ]
    return lines


def send_scale_lines(send_result):
    """The gateway's own rate, the per-step profile, the parallel workers and the first acceptance."""
    lines = []
    rate = send_result["outgoing_before"] / send_result["send"]["seconds"]
    own = send_result.get("gateway_own")
    if own:
        lines += ["", "### The gateway's own rate and ours", "",
                  f"- A plain client (one keep-alive `requests` session, no Odoo, JSON encoded before the clock "
                  f"starts) posting {own['size']:,} messages in batches of 1,000: {own['seconds']:.2f} s = "
                  f"**{own['sms_per_second']:,.0f} SMS/s** ({own['accepted']:,} accepted). One Odoo worker: "
                  f"{rate:,.0f} SMS/s = **{rate / own['sms_per_second']:.0%}** of it."]
    profile = send_result.get("profile")
    if profile:
        total = send_result["send"]["seconds"]
        lines += ["", f"### Where one worker's time goes (per-step timers, {send_result['outgoing_before']:,} SMS, "
                  f"{total:.2f} s)", "",
                  "| step | wall time | calls | per SMS | share |", "|---|---:|---:|---:|---:|"]
        for step in profile:
            lines.append(f"| {step['step']} | {step['seconds']:.2f} s | {step['calls']:,} | "
                         f"{step['us_per_sms']:.1f} us | {step['seconds'] / total:.0%} |")
    for row in send_result.get("parallel") or []:
        lines += ["", f"### {row['workers']} workers running the send cron at once on the same mailing", ""]
        if row.get("error"):
            lines.append(f"Failed: {row['error']}")
            continue
        gw = row["gateway"]
        lines += [f"- {row['size']:,} SMS in {row['seconds']:.2f} s = **{row['sms_per_second']:,.0f} SMS/s**, "
                  f"{row['sms_per_second'] / rate:.2f}x one worker ({rate:,.0f} SMS/s); per worker: "
                  + ", ".join(f"{w['seconds']:.2f} s ({w['cron_runs']} cron runs)" for w in row["per_worker"]) + ".",
                  f"- Gateway: accepted {gw['accepted']:,}, by state {gw['by_state']}, duplicate_accept_attempts "
                  f"{gw['duplicate_accept_attempts']}, presented_total {gw['presented_total']:,}."]
    first = send_result.get("first_accept")
    if first:
        lines += ["", "### First SMS accepted while the audience is materialised", ""]
        if first.get("error"):
            lines.append(f"Failed: {first['error']}")
        else:
            lines.append(f"- A due mailing of {first['size']:,} recipients (the audience data set), nothing "
                         f"materialised; one `_cron_sms_send(time_budget={first['budget']:.0f})`: the gateway's store "
                         f"recorded the first acceptance **{first['first_accept_seconds']} s** after the cron started. "
                         f"In that run: {first['traces']:,} traces materialised, {first['sent']:,} SMS sent, "
                         f"audience still being prepared: {first['audience_pending']}.")
    return lines


def write_results(path, facts, command, started, elapsed, audience_rows, send_result, verdict_rows, compositions,
                  explain=None, import_rows=None):
    per_second, ceiling_text = stock_ceiling()
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run`; see benchmarks/README.md for what is measured and how.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC (run took {elapsed / 60:.1f} min)",
        f"- Command: `{command}`",
        f"- Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram_gb']} GB RAM, kernel {facts['kernel']}",
        f"- PostgreSQL {facts['postgresql']} ({facts['pg_settings']}); Python {facts['python']}; "
        f"Odoo {facts['odoo']}; repository at {facts['git'] or '?'} (+ uncommitted changes, if any)",
        "",
        "## Targets",
        "",
        "| target | verdict | measured |",
        "|---|---|---|",
    ]
    lines += [f"| {target} | **{status}** | {detail} |" for target, status, detail in verdict_rows]
    if audience_rows:
        lines += ["", "## A. Audience preparation", ""]
        for size, comp in sorted(compositions.items()):
            lines.append(f"- Data set N={size:,}: {comp['invalid']:,} invalid numbers, {comp['duplicates']:,} "
                         f"duplicates, {comp['blacklisted']:,} blacklisted")
        lines += ["", *audience_table(audience_rows), "", "Ratios measured in this run:", "",
                  *(ratio_lines(audience_rows) or ["- (stock and ours never ran at the same size)"]),
                  *explain_lines(explain)]
    if send_result:
        lines += ["", "## B. Sending throughput", ""]
        if send_result.get("error"):
            lines.append(f"Failed: {send_result['error']}")
        else:
            mat, send = send_result["materialise"], send_result["send"]
            rate = send_result["outgoing_before"] / send["seconds"]
            total = send_result["size"] / (mat["seconds"] + send["seconds"])
            gateway = send_result["gateway"]
            lines += [
                "| step | wall time | SMS/s | RSS growth | SQL queries |",
                "|---|---:|---:|---:|---:|",
                f"| materialise `_sms_start_sending()` ({send_result['traces']:,} traces) | {mat['seconds']:.2f} s | "
                f"{send_result['size'] / mat['seconds']:,.0f} | {mat['rss_growth_mb']:.0f} MB | {mat['queries']:,} |",
                f"| send `_cron_sms_send(time_budget=3600)` x{send_result['cron_runs']} | {send['seconds']:.2f} s | "
                f"**{rate:,.0f}** | {send['rss_growth_mb']:.0f} MB | {send['queries']:,} |",
                f"| both | {mat['seconds'] + send['seconds']:.2f} s | {total:,.0f} | | |",
                f"| stock ceiling (computed) | | {per_second:.2f} | | |",
                "",
                f"- Ours / stock ceiling: {rate / per_second:,.0f}x.",
                f"- {ceiling_text}",
                f"- Gateway `/_admin/stats`: {gateway['messages']:,} messages, by state {gateway['by_state']}, "
                f"duplicate_accept_attempts {gateway['duplicate_accept_attempts']}, presented_total "
                f"{gateway['presented_total']:,}, credits charged {gateway['credits_charged']:,}.",
                f"- Traces after the run: {send_result['statuses']}; mailing state `{send_result['state']}`.",
            ]
            lines += send_scale_lines(send_result)
    if import_rows:
        lines += ["", "## C. Import of a file of numbers into a mailing list", "",
                  "A `number;name` CSV (2% invalid, 2% duplicates, 1% numbers of existing contacts), "
                  "each size in a fresh process (benchmarks/bench_import.py).", "", *import_table(import_rows)]
    findings = HERE / "FINDINGS.md"
    if findings.exists():
        lines += ["", "## Analysis (hand-written in benchmarks/FINDINGS.md, not regenerated by this run)", "",
                  *findings.read_text().splitlines()[1:]]
    lines.append("")
    Path(path).write_text("\n".join(lines))


def print_summary(audience_rows, send_result, verdict_rows, explain=None, import_rows=None):
    log("\n==================== summary ====================")
    if import_rows:
        for line in import_table(import_rows):
            log(line)
        log("")
    if audience_rows:
        for line in audience_table(audience_rows):
            log(line)
        log("")
        for line in ratio_lines(audience_rows):
            log(line)
        for line in explain_lines(explain):
            log(line)
    if send_result:
        log("")
        log("send: " + bench_send.describe(send_result))
        per_second, _text = stock_ceiling()
        if not send_result.get("error"):
            rate = send_result["outgoing_before"] / send_result["send"]["seconds"]
            log(f"stock ceiling (computed from its crons, not measured): {per_second:.2f} SMS/s -> ours is "
                f"{rate / per_second:,.0f}x")
    log("")
    for target, status, detail in verdict_rows:
        log(f"{status:<4} {target}: {detail}")


def main(argv=None):  # noqa: PLR0915 - the options, then the phases in order
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=benchlib.DEFAULT_DB, help="benchmark database (default %(default)s)")
    parser.add_argument("--template", help="template database to create it from (benchmarks/run passes it)")
    parser.add_argument("--reset", action="store_true", help="drop and rebuild the benchmark database")
    parser.add_argument("--quick", action="store_true", help="10k only: audience at 10k, sending 10k SMS")
    parser.add_argument("--sizes", type=int, nargs="+", help="audience sizes for ours (default 10000 100000 1000000)")
    parser.add_argument("--stock-sizes", type=int, nargs="+",
                        help="audience sizes for stock (default 10000 15000 100000 1000000; "
                             "15,000 shows where stock starts failing)")
    parser.add_argument("--unlimited-sizes", type=int, nargs="*",
                        help="sizes for stock with the literal_eval limit raised (default 100000; none with --quick)")
    parser.add_argument("--stock-timeout", type=float, default=600, help="seconds before a stock run is killed")
    parser.add_argument("--send-size", type=int, help="SMS to send (default 100000, 10000 with --quick)")
    parser.add_argument("--skip-audience", action="store_true")
    parser.add_argument("--skip-send", action="store_true")
    parser.add_argument("--parallel", type=int, nargs="*",
                        help="worker counts sending one mailing at once (default 2; none to skip)")
    parser.add_argument("--first-accept-size", type=int,
                        help="recipients of the first-acceptance run (default 1000000, 0 to skip; 0 with --quick)")
    parser.add_argument("--import-sizes", type=int, nargs="+",
                        help="lines of the number-import files (default 100000 1000000, 10000 with --quick)")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"), help="where to write the report")
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = args.sizes or ([10_000] if args.quick else [10_000, 100_000, 1_000_000])
    stock_sizes = args.stock_sizes or ([10_000] if args.quick else [10_000, 15_000, 100_000, 1_000_000])
    unlimited_sizes = args.unlimited_sizes if args.unlimited_sizes is not None else (
        [] if args.quick else [100_000])
    send_size = args.send_size or (10_000 if args.quick else 100_000)
    import_sizes = args.import_sizes or ([10_000] if args.quick else [100_000, 1_000_000])
    command = args.command or " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    ensure_database(args.db, args.template, args.reset)
    facts = machine_facts(args.db)
    log(f"==> {facts['nproc']} CPUs, {facts['ram_gb']} GB RAM, PostgreSQL {facts['postgresql']}")

    audience_rows, compositions, send_result, explain = [], {}, None, None
    if not args.skip_audience:
        log(f"==> A. audience preparation: ours at {sizes}, stock at {stock_sizes} "
            f"(stock timeout {args.stock_timeout:.0f} s)")
        audience_rows = bench_audience.run(args.db, sizes, stock_sizes, args.stock_timeout,
                                           unlimited_sizes=unlimited_sizes, log=log)
        compositions = {r["size"]: r["composition"] for r in audience_rows}
        explain_size = max([n for n in sizes if n <= 100_000] or [min(sizes)])
        log(f"  EXPLAIN ANALYZE of the audience query at N={explain_size:,} ...")
        explain = bench_audience.run_one(args.db, "explain", explain_size, 900)
        explain["size"] = explain_size
    if not args.skip_send:
        log(f"==> B. sending {send_size:,} SMS through the local gateway")
        parallel = args.parallel if args.parallel is not None else [2]
        first_size = args.first_accept_size if args.first_accept_size is not None else (
            0 if args.quick else 1_000_000)
        if first_size:
            bench_audience.build_datasets(args.db, [first_size], log=log)
        send_result = bench_send.run(args.db, send_size, log=log, parallel=parallel,
                                     first_accept_size=first_size or None)

    import_rows = []
    if not args.skip_import:
        log(f"==> C. import of a file of numbers into a mailing list at {import_sizes}")
        import_rows = bench_import.run(args.db, import_sizes, log=log)

    verdict_rows = verdicts(audience_rows, send_result, sizes) + import_verdicts(import_rows)
    elapsed = time.monotonic() - t0
    print_summary(audience_rows, send_result, verdict_rows, explain, import_rows)
    write_results(args.results, facts, command, started, elapsed, audience_rows, send_result, verdict_rows,
                  compositions, explain, import_rows)
    (Path(args.results).with_suffix(".json")).write_text(json.dumps(
        {"facts": facts, "command": command, "date": started.isoformat(), "audience": audience_rows,
         "explain": explain, "send": send_result, "import": import_rows, "verdicts": verdict_rows},
        indent=1, default=str))
    log(f"\n==> wrote {args.results} ({elapsed / 60:.1f} min)")
    return 1 if any(status == "FAIL" for _t, status, _d in verdict_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
