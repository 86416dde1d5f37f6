"""Shared helpers of the benchmarks: where Odoo is, an Odoo environment in a script, the data
sets (bulk SQL), and one measurement (wall time, peak RSS growth, SQL queries).

Every measurement runs in its own Python process (see ``run_worker``): peak memory is then the
measurement's own, and a stock run that hangs can be killed.
"""

import contextlib
import gc
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ODOO_PATH = Path(os.environ.get("ODOO_PATH", "/opt/odoo17"))
ADDON = "sms_marketing_ext"
DEFAULT_DB = "sms_ext_bench"
MB = 1024 * 1024

# Bench contacts get French mobile numbers +33 6xxxxxxxx: each data set takes the next block
# of numbers, so data sets never share a number.
NUMBER_BASE = 600_000_000
NUMBER_LIMIT = 700_000_000


def db_user():
    return os.environ.get("DB_USER") or os.environ.get("PGUSER") or os.environ.get("USER") or "root"


def addons_path():
    return f"{ODOO_PATH}/addons,{ODOO_PATH}/odoo/addons,{REPO_ROOT}"


def odoo_bin_cmd(*args):
    """odoo-bin with the venv's python, our addons path and the database user (as scripts/lib.sh)."""
    cmd = [sys.executable, str(ODOO_PATH / "odoo-bin"), f"--addons-path={addons_path()}", f"--db_user={db_user()}"]
    if os.environ.get("PGHOST"):
        cmd.append(f"--db_host={os.environ['PGHOST']}")
    if os.environ.get("PGPORT"):
        cmd.append(f"--db_port={os.environ['PGPORT']}")
    return cmd + list(args)


def command(name, *args):
    """[absolute path of the program ``name``, *args] (PATH lookup, as a shell would)."""
    path = shutil.which(name)
    if not path:
        raise SystemExit(f"{name} not found on PATH")
    return [path, *args]


def sh(cmd, **kwargs):
    """subprocess.run of a fixed argument list built by this package (no shell)."""
    check = kwargs.pop("check", True)
    return subprocess.run(cmd, check=check, **kwargs)  # noqa: S603 - our own argument lists, no shell


def check_name(name):
    """Database names and similar identifiers go into psql commands: letters, digits, _ and - only."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name or ""):
        raise SystemExit(f"invalid name {name!r}: letters, digits, _ and - only")
    return name


def psql(db, sql):
    """Run one SQL statement with psql, return its unaligned output."""
    out = sh(command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", db_user(), "-d", check_name(db), "-tAc", sql),
             capture_output=True, text=True)
    return out.stdout.strip()


def db_exists(db):
    return psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{check_name(db)}'") == "1"  # noqa: S608


VACUUM_TABLES = ("mailing_trace", "sms_sms", "sms_tracker", "mailing_contact", "mailing_subscription",
                 "phone_blacklist", "mailing_mailing")


def vacuum(db):
    """VACUUM ANALYZE the tables the measurements write: rolled-back runs leave dead rows (a stock
    run at 100k leaves 100k dead sms_tracker rows, whose foreign-key checks then scan them), and
    a production database is vacuumed. Setup only, never inside a measurement."""
    psql(db, "VACUUM ANALYZE " + ", ".join(VACUUM_TABLES))


# ------------------------------------------------------------------------------------------------
# Odoo in a script
# ------------------------------------------------------------------------------------------------

_odoo_loaded = False


def load_odoo(db):
    """Configure Odoo for ``db`` (quiet logs) and return the ``odoo`` package."""
    global _odoo_loaded  # noqa: PLW0603
    if str(ODOO_PATH) not in sys.path:
        sys.path.insert(0, str(ODOO_PATH))
    import odoo
    if not _odoo_loaded:
        args = [f"--addons-path={addons_path()}", f"--db_user={db_user()}", "-d", db, "--log-level=warn",
                "--max-cron-threads=0", "--workers=0"]
        if os.environ.get("PGHOST"):
            args.append(f"--db_host={os.environ['PGHOST']}")
        if os.environ.get("PGPORT"):
            args.append(f"--db_port={os.environ['PGPORT']}")
        odoo.tools.config.parse_config(args)
        _odoo_loaded = True
    return odoo


@contextlib.contextmanager
def odoo_env(db):
    """An environment as superuser on a new cursor of ``db``; the caller commits or rolls back
    (the cursor is rolled back on exit unless committed)."""
    odoo = load_odoo(db)
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {"lang": "en_US", "tz": "UTC"})
        try:
            yield env
        finally:
            cr.rollback()


# ------------------------------------------------------------------------------------------------
# Data sets (bulk SQL: no ORM, so a million contacts take seconds)
# ------------------------------------------------------------------------------------------------

def dataset_name(kind, size):
    return f"bench-{kind}-{size}"


def find_list(cr, kind, size):
    cr.execute("SELECT id FROM mailing_list WHERE name = %s ORDER BY id LIMIT 1", [dataset_name(kind, size)])
    row = cr.fetchone()
    return row[0] if row else None


def build_list(cr, kind, size, mix=True):
    """Create the mailing list ``bench-<kind>-<size>`` with ``size`` contacts subscribed, unless it
    exists; return its id. With ``mix``: ~2% invalid numbers, ~2% duplicates of another contact's
    number, ~1% blacklisted numbers (rows of phone_blacklist, inactive until a measurement
    activates those of its list, see ``activate_blacklist``); the rest valid and unique. Without:
    all valid and unique. Numbers alternate national (06 ...) and international (+33 6 ...)
    formats; the contacts are French (country_id), and phone_sanitized holds the E.164 number,
    as stock's compute would store it."""
    list_id = find_list(cr, kind, size)
    if list_id:
        return list_id
    cr.execute("SELECT id FROM res_country WHERE code = 'FR'")
    france = cr.fetchone()[0]
    # The next free block of numbers: after every bench contact's number.
    cr.execute(
        "SELECT COALESCE(max(substr(phone_sanitized, 4)::bigint) + 1, %s) FROM mailing_contact "
        "WHERE name LIKE 'Bench %%' AND phone_sanitized LIKE '+336%%'",
        [NUMBER_BASE],
    )
    base = cr.fetchone()[0]
    if base + size >= NUMBER_LIMIT:
        raise RuntimeError("no French mobile numbers left for this data set: drop the database (--reset)")
    cr.execute(
        "INSERT INTO mailing_list (name, active, is_public, create_uid, write_uid, create_date, write_date) "
        "VALUES (%s, true, false, 1, 1, now() at time zone 'UTC', now() at time zone 'UTC') RETURNING id",
        [dataset_name(kind, size)],
    )
    list_id = cr.fetchone()[0]
    # kind of row i: 'invalid' (i % 50 = 7), 'dup' (i % 50 = 13: the number of row i - 13),
    # 'bl' (i % 100 = 29, a number on the blacklist), else 'ok'.
    cr.execute(
        """
        CREATE TEMP TABLE bench_rows ON COMMIT DROP AS
        SELECT i,
               CASE WHEN NOT %(mix)s THEN 'ok'
                    WHEN i %% 50 = 7 THEN 'invalid'
                    WHEN i %% 50 = 13 THEN 'dup'
                    WHEN i %% 100 = 29 THEN 'bl'
                    ELSE 'ok' END AS kind,
               (%(base)s + CASE WHEN %(mix)s AND i %% 50 = 13 THEN i - 13 ELSE i END)::text AS nsn
          FROM generate_series(0, %(size)s - 1) AS i
        """,
        {"mix": mix, "base": base, "size": size},
    )
    cr.execute(
        """
        INSERT INTO mailing_contact (name, email, country_id, mobile, phone_sanitized,
                                     create_uid, write_uid, create_date, write_date)
        SELECT 'Bench ' || %(list)s || '-' || i,
               'bench' || %(list)s || '-' || i || '@example.com',
               %(country)s,
               CASE WHEN kind = 'invalid' THEN '06 ' || substr(nsn, 2, 2) || ' ' || substr(nsn, 4, 2)
                    WHEN i %% 2 = 0 THEN '0' || substr(nsn, 1, 1) || ' ' || substr(nsn, 2, 2) || ' '
                         || substr(nsn, 4, 2) || ' ' || substr(nsn, 6, 2) || ' ' || substr(nsn, 8, 2)
                    ELSE '+33 ' || substr(nsn, 1, 1) || ' ' || substr(nsn, 2, 2) || ' '
                         || substr(nsn, 4, 2) || ' ' || substr(nsn, 6, 2) || ' ' || substr(nsn, 8, 2) END,
               CASE WHEN kind = 'invalid' THEN NULL ELSE '+33' || nsn END,
               1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM bench_rows ORDER BY i
        """,
        {"list": list_id, "country": france},
    )
    cr.execute(
        """
        INSERT INTO mailing_subscription (contact_id, list_id, opt_out, create_uid, write_uid, create_date, write_date)
        SELECT c.id, %(list)s, false, 1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM mailing_contact c WHERE c.name LIKE %(prefix)s
        """,
        {"list": list_id, "prefix": f"Bench {list_id}-%"},
    )
    cr.execute(
        """
        INSERT INTO phone_blacklist (number, active, create_uid, write_uid, create_date, write_date)
        SELECT '+33' || nsn, false, 1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM bench_rows WHERE kind = 'bl'
        ON CONFLICT DO NOTHING
        """
    )
    cr.execute("DROP TABLE bench_rows")
    cr.execute("ANALYZE mailing_contact")
    cr.execute("ANALYZE mailing_subscription")
    cr.execute("ANALYZE phone_blacklist")
    return list_id


def activate_blacklist(cr, list_id):
    """Make the blacklist hold exactly the blacklisted numbers of this list's block (plus any
    non-bench entries): every measurement sees a ~1% blacklist of its own audience, whatever other
    data sets the database holds. Done inside the measurement's transaction (rolled back)."""
    cr.execute(
        "SELECT min(c.phone_sanitized), max(c.phone_sanitized) FROM mailing_contact c "
        "JOIN mailing_subscription s ON s.contact_id = c.id WHERE s.list_id = %s",
        [list_id],
    )
    low, high = cr.fetchone()
    cr.execute(
        "UPDATE phone_blacklist SET active = (number BETWEEN %s AND %s) "
        "WHERE number LIKE '+336%%' AND length(number) = 12",
        [low, high],
    )


def list_composition(cr, list_id):
    cr.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE c.phone_sanitized IS NULL),
               count(*) - count(DISTINCT c.phone_sanitized) - count(*) FILTER (WHERE c.phone_sanitized IS NULL)
          FROM mailing_subscription s JOIN mailing_contact c ON c.id = s.contact_id
         WHERE s.list_id = %s
        """,
        [list_id],
    )
    total, invalid, duplicates = cr.fetchone()
    cr.execute(
        "SELECT count(*) FROM phone_blacklist b WHERE b.number IN ("
        "SELECT c.phone_sanitized FROM mailing_subscription s JOIN mailing_contact c ON c.id = s.contact_id "
        "WHERE s.list_id = %s)",
        [list_id],
    )
    return {"contacts": total, "invalid": invalid, "duplicates": duplicates, "blacklisted": cr.fetchone()[0]}


# ------------------------------------------------------------------------------------------------
# One measurement
# ------------------------------------------------------------------------------------------------

class RssSampler:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` is the highest."""

    def __init__(self, interval=0.01):
        import psutil  # Odoo's requirements

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self):
        return self.process.memory_info().rss

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


_measure_started = None  # perf_counter() at the start of the current measurement, for failures


def measure(fn):
    """Run ``fn()`` and return (its result, {seconds, rss_growth_mb, queries}). Memory growth is
    the peak RSS during the call (sampled, and the kernel's high-water mark when it rose) minus
    the RSS just before it."""
    import odoo

    gc.collect()
    sampler = RssSampler()
    rss_before = sampler.rss()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queries_before = odoo.sql_db.sql_counter
    global _measure_started  # noqa: PLW0603
    with sampler:
        started = _measure_started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    queries = odoo.sql_db.sql_counter - queries_before
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = max(sampler.peak, maxrss_after if maxrss_after > maxrss_before else 0)
    return result, {
        "seconds": round(seconds, 3),
        "rss_growth_mb": round(max(peak - rss_before, 0) / MB, 1),
        "queries": queries,
    }


def worker_main(job):
    """Entry point of a worker process: run ``job()`` (returns a dict), print it as the last line
    of stdout as JSON; on an exception print {"error": ...}."""
    try:
        result = job()
    except Exception as error:  # reported to the orchestrator, which reports it
        traceback.print_exc(file=sys.stderr)
        message = " ".join(str(error).split()) or type(error).__name__
        result = {"error": f"{type(error).__name__}: {message}"[:300]}
        if _measure_started is not None:
            result["seconds"] = round(time.perf_counter() - _measure_started, 2)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_worker(args, timeout):
    """Run ``python <args>`` in its own process group; return its JSON result, or
    {"error": "timeout after N s"} / {"error": "crashed ..."}."""
    cmd = [sys.executable, *args]
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"error": f"timeout after {timeout:.0f} s", "timeout": True,
                "seconds": round(time.monotonic() - started, 1)}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = " | ".join(err.strip().splitlines()[-3:])
    return {"error": f"crashed (exit code {proc.returncode}): {tail}"[:300]}
