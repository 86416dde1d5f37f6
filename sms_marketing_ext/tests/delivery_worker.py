"""A real Odoo worker process for the multi-process delivery tests (test_sms_delivery_processes).

Not a test module: run through ``odoo-bin shell -d <db>`` with this file on standard input and
the scenario in the environment variable SMS_EXT_WORKER (JSON). Every phase commits its work,
as a production worker does, and prints one line ``RESULT <json>``.

Phases:
- setup: a company of its own (so nothing leaks into other tests' defaults), a gateway on the
  test's local gateway, N contacts in a list, a mailing materialised and ready to send; with
  ``bulk`` the contacts are inserted in SQL (tens of thousands), and with ``queue`` the mailing is
  only put in the queue for the send cron (``chunk_size`` then caps the ids per materialised chunk);
- crash: send, but die with SIGKILL right after the gateway accepted a batch, before recording
  its results or committing (the worst moment); with ``die_after_jobs`` (OVHcloud), in the middle
  of the batch's call, once OVH took that many of its jobs;
- age: make what was handed to the gateway ``minutes`` older;
- send: send until the mailing is done, or only batches (``batches_only``) like a second worker;
- report: the mailing's traces and the credits they recorded;
- cleanup: delete what setup created.
"""
# ruff: noqa: F821  (env is provided by odoo-bin shell)
import json
import os
import signal
import sys
import time

scenario = json.loads(os.environ["SMS_EXT_WORKER"])
phase = scenario["phase"]
Mailing = env["mailing.mailing"]
result = {}

if phase == "setup":
    company = env["res.company"].create({"name": scenario["tag"], "country_id": env.ref("base.fr").id})
    provider = {"provider": "jsonrpc", "base_url": scenario.get("gateway_url"), "account_token": scenario.get("token")}
    if scenario.get("ovh"):  # {"endpoint", "application_key", "application_secret", "consumer_key", "service_name"}
        provider = {"provider": "ovh", **{f"ovh_{key}": value for key, value in scenario["ovh"].items()}}
    gateway = env["sms.gateway"].create({
        "name": scenario["tag"], **provider, "batch_size": scenario.get("batch_size", 10),
        "company_id": company.id, "is_default": True,
    })
    mailing_list = env["mailing.list"].create({"name": scenario["tag"]})
    if scenario.get("bulk"):
        env.cr.execute("""
            WITH new AS (
                INSERT INTO mailing_contact (name, mobile, phone_sanitized, create_uid, write_uid, create_date,
                                             write_date)
                SELECT %(tag)s || ' ' || i, '+3377' || lpad(i::text, 7, '0'), '+3377' || lpad(i::text, 7, '0'),
                       1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
                  FROM generate_series(0, %(count)s - 1) i
                RETURNING id)
            INSERT INTO mailing_subscription (contact_id, list_id, create_uid, write_uid, create_date, write_date)
            SELECT id, %(list)s, 1, 1, now() at time zone 'UTC', now() at time zone 'UTC' FROM new
        """, {"tag": scenario["tag"], "count": scenario["contacts"], "list": mailing_list.id})
    else:
        env["mailing.contact"].create([
            {"name": f"{scenario['tag']} {index}", "mobile": f"+33 6 55 {index // 10000:02d} "
             f"{index // 100 % 100:02d} {index % 100:02d}", "list_ids": [(4, mailing_list.id)]}
            for index in range(scenario["contacts"])
        ])
    mailing = Mailing.with_company(company).create({
        "subject": scenario["tag"], "mailing_type": "sms", "body_plaintext": "Hello from a worker",
        "sms_allow_unsubscribe": True, "company_id": company.id, "sms_gateway_id": gateway.id,
        "mailing_model_id": env["ir.model"]._get_id("mailing.list"),
        "contact_list_ids": [(6, 0, mailing_list.ids)],
    })
    if scenario.get("chunk_size"):
        env["ir.config_parameter"].set_param("sms_marketing_ext.audience_chunk_size", scenario["chunk_size"])
    if scenario.get("queue"):
        mailing.write({"state": "in_queue"})  # as Send does, without its cost estimate
        mailing._sms_trigger_send_cron()
    else:
        mailing._sms_start_sending()
    env.cr.commit()
    env.cr.execute("SELECT count(*) FROM mailing_trace WHERE mass_mailing_id = %s AND trace_status = 'outgoing'",
                   [mailing.id])
    result = {"company": company.id, "gateway": gateway.id, "list": mailing_list.id, "mailing": mailing.id,
              "outgoing": env.cr.fetchone()[0], "state": mailing.state}

elif phase == "crash":
    def die(*args, **kwargs):
        sys.stdout.write("RESULT " + json.dumps({"dying": True}) + "\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    if scenario.get("die_after_jobs"):
        # OVHcloud takes that many jobs of the batch, then the worker dies in the middle of its call.
        OvhClient = type(Mailing.browse(scenario["mailing"])._sms_get_gateway()._get_api())
        real_call, taken = OvhClient._call, []

        def call_then_die(self, method, path, data=None, need_auth=True):
            answer = real_call(self, method, path, data, need_auth)
            if method == "POST" and path.endswith("/jobs"):
                taken.append(answer)
                if len(taken) >= scenario["die_after_jobs"]:
                    die()
            return answer

        OvhClient._call = call_then_die
    else:
        type(Mailing)._sms_record_results = die
    Mailing.browse(scenario["mailing"])._sms_send_batch()
    result = {"survived": True}  # never reached

elif phase == "age":
    # What was handed to the gateway is that many minutes older (the recovery's grace has passed).
    env.cr.execute("UPDATE mailing_trace SET sms_sending_since = sms_sending_since - make_interval(mins => %(m)s), "
                   "sms_status_date = sms_status_date - make_interval(mins => %(m)s) "
                   "WHERE mass_mailing_id = %(mailing)s AND sms_sending_since IS NOT NULL",
                   {"m": scenario["minutes"], "mailing": scenario["mailing"]})
    result = {"aged": env.cr.rowcount}
    env.cr.commit()

elif phase == "send":
    mailing = Mailing.browse(scenario["mailing"])
    batches = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not mailing._sms_send_batch():
            break
        env.cr.commit()
        batches += 1
    if not scenario.get("batches_only"):
        mailing._sms_finish_if_done()
    env.cr.commit()
    result = {"batches": batches, "state": mailing.state}

elif phase == "report":
    env.cr.execute(
        "SELECT trace_status, sms_uuid, sms_attempts FROM mailing_trace WHERE mass_mailing_id = %s",
        [scenario["mailing"]],
    )
    traces = env.cr.fetchall()
    env.cr.execute("SELECT COALESCE(sum(sms_credits), 0) FROM mailing_trace WHERE mass_mailing_id = %s",
                   [scenario["mailing"]])
    credit_sum = float(env.cr.fetchone()[0])
    mailing = Mailing.browse(scenario["mailing"])
    env.cr.execute("SELECT sms_uuid, sms_provider_ref FROM mailing_trace WHERE mass_mailing_id = %s "
                   "AND sms_sending_since IS NOT NULL", [scenario["mailing"]])
    handed_over = dict(env.cr.fetchall())
    env.cr.execute("SELECT sms_uuid, sms_provider_ref FROM mailing_trace WHERE mass_mailing_id = %s "
                   "AND sms_provider_ref IS NOT NULL", [scenario["mailing"]])
    refs = dict(env.cr.fetchall())
    result = {"traces": traces, "state": mailing.state, "credits": credit_sum, "stat_credits": mailing.sms_stat_credits,
              "handed_over": sorted(handed_over), "refs": refs}

elif phase == "recipients":
    # Per contact of the mailing's lists: how many traces, and how many with a uuid (sent).
    mailing = Mailing.browse(scenario["mailing"])
    env.cr.execute("""
        SELECT count(t.id), count(t.sms_uuid), count(DISTINCT t.sms_uuid), min(t.trace_status), max(t.trace_status)
          FROM mailing_subscription s
          LEFT JOIN mailing_trace t
                 ON t.mass_mailing_id = %s AND t.model = 'mailing.contact' AND t.res_id = s.contact_id
         WHERE s.list_id = ANY(%s)
         GROUP BY s.contact_id
    """, [mailing.id, mailing.contact_list_ids.ids])
    per_contact = env.cr.fetchall()
    result = {
        "contacts": len(per_contact),
        "shapes": sorted({json.dumps(row[:3]) for row in per_contact}),
        "statuses": sorted({status for row in per_contact for status in row[3:] if status}),
        "state": mailing.state,
        "pending": mailing.sms_audience_pending,
    }

elif phase == "cleanup":
    mailing = Mailing.browse(scenario["mailing"])
    contacts = mailing.contact_list_ids.contact_ids
    lists = mailing.contact_list_ids
    gateway = mailing.sms_gateway_id
    env.cr.execute("DELETE FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
    mailing.unlink()
    env.cr.execute("DELETE FROM mailing_contact WHERE id = ANY(%s)", [contacts.ids])
    lists.unlink()
    env["ir.config_parameter"].search([("key", "=", "sms_marketing_ext.audience_chunk_size")]).unlink()
    gateway.unlink()
    env["res.company"].browse(scenario["company"]).active = False
    env.cr.commit()

sys.stdout.write("RESULT " + json.dumps(result) + "\n")
sys.stdout.flush()
