"""Import of a file of phone numbers into a mailing list (the "Import numbers" wizard).

For each size N a CSV file of N lines (the header included) is generated in the worker (a ``number;name`` header, French
mobile numbers in national and international format; in every 50 lines one invalid number and one
duplicate of an earlier line; in every 100 lines one number of an existing contact). Each size runs
in a fresh process and a transaction that is rolled back; the wizard is created on a new list (the
web client's save: not measured, its request body holds the base64 anyway), then ``action_preview()``
and ``action_import()`` are measured one after the other as the web client's buttons call them, the
caches emptied before each (as in a new request): wall time, peak RSS growth of the Odoo process,
SQL queries. The import after the preview starts from the lines the preview staged, as in the UI.

Usage (normally through benchmarks/run):
    python benchmarks/bench_import.py --db sms_ext_bench --sizes 100000 1000000
"""

import argparse
import base64
import os
import sys

import benchlib

IMPORT_PREFIX = 750_000_000  # +33 75xxxxxxx: valid mobile numbers the audience data sets never use


def bench_number(index):
    """Line ``index`` of the file: a French mobile number, or an invalid one, or a duplicate."""
    if index % 50 == 7:
        return "07 12"  # invalid for France
    if index % 50 == 13:
        index -= 13  # the number of an earlier line
    nsn = IMPORT_PREFIX + index
    digits = f"{nsn:09d}"
    spaced = " ".join([digits[0], digits[1:3], digits[3:5], digits[5:7], digits[7:9]])
    return f"0{spaced}" if index % 2 else f"+33 {spaced}"


def bench_file(size):
    """``size`` lines: the header and ``size - 1`` numbers (at 1,000,000: the wizard's maximum)."""
    lines = ["number;name"]
    lines.extend(f"{bench_number(index)};Contact {index}" for index in range(size - 1))
    return ("\n".join(lines) + "\n").encode()


# bench_file() written by PostgreSQL, straight into the wizard's column: the worker process never
# holds the file (nor its base64), so the memory the preview and the import take is measured from a
# process that did not just allocate and free more than they need (glibc and Python keep freed
# memory for reuse: a file generated in Python would hide the growth of the code measured).
FILE_SQL = """
    UPDATE mailing_list_sms_import
       SET file_data = convert_to(replace(encode(convert_to(f.content, 'UTF8'), 'base64'), E'\\n', ''), 'UTF8')
      FROM (SELECT 'number;name' || E'\\n' || string_agg(
                       CASE WHEN g.i %% 50 = 7 THEN '07 12'
                            ELSE CASE WHEN j.k %% 2 = 1 THEN '0' ELSE '+33 ' END
                                 || substr(d.digits, 1, 1) || ' ' || substr(d.digits, 2, 2) || ' '
                                 || substr(d.digits, 4, 2) || ' ' || substr(d.digits, 6, 2) || ' '
                                 || substr(d.digits, 8, 2)
                       END || ';Contact ' || g.i, E'\\n' ORDER BY g.i) || E'\\n' AS content
              FROM generate_series(0, %(size)s - 2) AS g(i)
        CROSS JOIN LATERAL (SELECT CASE WHEN g.i %% 50 = 13 THEN g.i - 13 ELSE g.i END AS k) AS j
        CROSS JOIN LATERAL (SELECT lpad((%(prefix)s + j.k)::text, 9, '0') AS digits) AS d) AS f
     WHERE id = %(id)s
"""


def worker(db, size):
    def job():
        with benchlib.odoo_env(db) as env:
            cr = env.cr
            # One existing contact in every 100 lines (reused, not created again).
            cr.execute(
                """INSERT INTO mailing_contact (name, mobile, phone_sanitized, create_uid, write_uid,
                                                create_date, write_date)
                   SELECT 'Bench import ' || i, '+33' || (%s + i), '+33' || (%s + i), 1, 1, now(), now()
                     FROM generate_series(0, %s - 1, 100) AS i""",
                [IMPORT_PREFIX, IMPORT_PREFIX, size],
            )
            mailing_list = env["mailing.list"].create({"name": f"Bench import {size}"})
            wizard = env["mailing.list.sms.import"].create(
                {
                    "mailing_list_id": mailing_list.id,
                    "file_name": f"numbers-{size}.csv",
                    "country_id": env.ref("base.fr").id,
                }
            )
            env.flush_all()
            cr.execute(FILE_SQL, {"size": size, "prefix": IMPORT_PREFIX, "id": wizard.id})
            if size <= 10_000:  # the SQL writes what bench_file() describes
                cr.execute("SELECT file_data FROM mailing_list_sms_import WHERE id = %s", [wizard.id])
                assert base64.b64decode(bytes(cr.fetchone()[0])) == bench_file(size), "FILE_SQL != bench_file()"
            env.flush_all()
            env.invalidate_all()
            _result, preview = benchlib.measure(wizard.action_preview)
            counts = {name: wizard[name] for name in ("line_count", "new_count", "duplicate_count", "rejected_count")}
            env.flush_all()
            env.invalidate_all()
            _result, imported = benchlib.measure(wizard.action_import)
            cr.execute("SELECT count(*) FROM mailing_subscription WHERE list_id = %s", [mailing_list.id])
            subscribed = cr.fetchone()[0]
            return {
                "preview": preview,
                "import": imported,
                "counts": counts,
                "created": wizard.created_count,
                "subscribed": subscribed,
                "rejected_attachment_bytes": wizard.rejected_attachment_id.file_size,
            }

    benchlib.worker_main(job)


def run_one(db, size, timeout):
    return benchlib.run_worker([os.path.abspath(__file__), "--worker", "--db", db, "--size", str(size)], timeout)


def run(db, sizes, timeout=900, log=print):
    rows = []
    for size in sizes:
        log(f"  import N={size:>9,} ...")
        result = run_one(db, size, timeout)
        result["size"] = size
        log("    " + describe(result))
        rows.append(result)
    return rows


def describe(row):
    if row.get("error"):
        return f"failed: {row['error']}"
    preview, imported = row["preview"], row["import"]
    return (f"preview {preview['seconds']:.2f} s +{preview['rss_growth_mb']:.0f} MB RSS "
            f"({preview['queries']} queries); import {imported['seconds']:.2f} s "
            f"+{imported['rss_growth_mb']:.0f} MB RSS ({imported['queries']} queries); "
            f"{row['subscribed']:,} subscribed, {row['created']:,} contacts created")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=benchlib.DEFAULT_DB)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.db, args.size)
        return 0
    for row in run(args.db, args.sizes, args.timeout):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
