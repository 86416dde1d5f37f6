import logging
import time

from odoo import models
from odoo.tools import SQL

from ..tools import sms_audience

_logger = logging.getLogger(__name__)

# Materialisation commits one chunk of source ids at a time (see ``_sms_materialize_audience``):
# the first chunk is small so that sending starts at once, the next ones aim at
# MATERIALIZE_CHUNK_SECONDS of work, up to the system parameter below (ids per chunk).
MATERIALIZE_FIRST_CHUNK = 5000
MATERIALIZE_CHUNK_SECONDS = 2.0
MATERIALIZE_MAX_CHUNK = 200000
MATERIALIZE_MAX_CHUNK_PARAM = "sms_marketing_ext.audience_chunk_size"
# A message's uuid: a UUID version 7 (RFC 9562) in 32 hex digits, the Unix time in milliseconds
# then 74 random bits from gen_random_uuid() (PostgreSQL's cryptographically strong generator;
# the version 4 uuid's first 13 digits are replaced by the time and the version). Uuids created
# together are neighbours: the unique index on sms_uuid grows at its right edge instead of taking
# one random page per trace (at materialisation, and again at every update of a sent trace).
UUID7_SQL = SQL(
    "overlay(replace(gen_random_uuid()::text, '-', '') "
    "placing lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' "
    "from 1 for 13)"
)


class MailingMailingMaterialize(models.Model):
    """The audience of an SMS mailing materialised as traces, chunk by chunk, committed and
    resumable within the send cron's time limit."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    def _sms_materialize_audience(self, deadline=None, plan=None, max_chunks=None):
        """Create the traces of the remaining audience with set-based SQL, in chunks of source
        ids, each committed on its own in production (``_sms_commit``): an outgoing trace with a
        new uuid for each recipient that will receive the SMS, a canceled trace with its reason
        for the others. After each chunk ``sms_materialized_upto`` holds the last id covered:
        a run killed mid-chunk loses that chunk's work only, and the next run continues after the
        last commit. A recipient already traced is never taken again (NOT EXISTS), and the
        partial unique index on (mailing, number) makes a second target of a number impossible.

        :param deadline: ``time.monotonic()`` value after which no new chunk starts
        :param plan: the run's :class:`~..tools.sms_audience.ChunkPlan` (chunk sizes and bounds),
            kept by a caller that materialises a chunk at a time between batches
        :param max_chunks: stop after this many chunks
        :return: number of traces created
        """
        self.ensure_one()
        plan = plan or self._sms_chunk_plan()
        created = chunks = 0
        while self.sms_audience_pending or not chunks:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if chunks and (out_of_time or (max_chunks is not None and chunks >= max_chunks)):
                break
            started = time.monotonic()
            count, size = self._sms_materialize_chunk(plan)
            self._sms_commit()
            created += count
            chunks += 1
            if size:
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                plan.record(size, time.monotonic() - started, remaining)
        return created

    def _sms_chunk_plan(self):
        maximum = int(self.env["ir.config_parameter"].sudo().get_param(
            MATERIALIZE_MAX_CHUNK_PARAM, MATERIALIZE_MAX_CHUNK) or MATERIALIZE_MAX_CHUNK)
        return sms_audience.ChunkPlan(MATERIALIZE_FIRST_CHUNK, maximum, MATERIALIZE_CHUNK_SECONDS)

    def _sms_materialize_reset(self):
        """A new send materialises the filter from its first record again (it may have changed
        since an earlier send: the recipients already traced are skipped)."""
        self.ensure_one()
        self.env.cr.execute(SQL(
            "UPDATE mailing_mailing SET sms_materialized_upto = 0, sms_audience_pending = TRUE WHERE id = %s",
            self.id,
        ))
        self.invalidate_recordset(["sms_materialized_upto", "sms_audience_pending"])

    def _sms_materialize_chunk(self, plan):
        """Materialise the next chunk of ``plan.step`` source ids in the current transaction,
        under a lock on the mailing (two workers never materialise the same chunk), and move
        ``sms_materialized_upto`` past it; ``sms_audience_pending`` is cleared after the last.

        :return: (traces created, ids covered)
        """
        self.ensure_one()
        self.env.flush_all()  # the SQL below reads contacts, subscriptions, blacklist and traces
        cr = self.env.cr
        cr.execute(SQL("SELECT sms_materialized_upto FROM mailing_mailing WHERE id = %s FOR UPDATE", self.id))
        upto = cr.fetchone()[0] or 0
        self._sms_audience_sql_setup()
        if plan.bounds is None:
            # Once per run: the first and last remaining record of the filter (a chunk starts at
            # a record, not in a gap of ids, and the last chunk ends at the last record).
            query = self._sms_recipients_query()
            query.add_where(SQL("%s > %s", SQL.identifier(query.table, "id"), upto))
            cr.execute(SQL("SELECT min(id), max(id) FROM (%s) q", query.select()))
            plan.bounds = cr.fetchone()
        low, high = plan.bounds
        if low is None or max(low, upto + 1) > high:
            self._sms_materialize_progress(max(upto, high or 0), done=True)
            return 0, 0
        start = max(low, upto + 1)
        # A/B samples are picked over the whole filter: one chunk.
        end = high if self.ab_testing_enabled else min(start + plan.step - 1, high)
        if self._sms_number_source()[0] == "python":
            self._sms_prepare_python_numbers(id_range=(start, end))
        cr.execute(SQL(
            """
            INSERT INTO mailing_trace (
                trace_type, model, res_id, mass_mailing_id, campaign_id, sms_number, sms_country_code,
                trace_status, failure_type, sms_uuid, sms_parts,
                create_uid, create_date, write_uid, write_date)
            SELECT 'sms', %(model)s, a.res_id, %(mailing)s, %(campaign)s, a.number, a.country,
                   CASE WHEN a.failure_type IS NULL THEN 'outgoing' ELSE 'cancel' END,
                   a.failure_type,
                   CASE WHEN a.failure_type IS NULL THEN %(uuid)s END,
                   CASE WHEN a.failure_type IS NULL THEN %(parts)s END,
                   %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
              FROM (%(audience)s) a
            ON CONFLICT DO NOTHING
            """,
            model=self.mailing_model_real,
            mailing=self.id,
            campaign=self.campaign_id.id or None,
            parts=self.sms_segment_count,
            uid=self.env.uid,
            audience=self._sms_audience_sql(id_range=(start, end)),
            uuid=UUID7_SQL,
        ))
        created = cr.rowcount
        self.env["mailing.trace"].invalidate_model()
        self._sms_materialize_progress(end, done=end >= high)
        _logger.info("SMS mailing %s: audience materialised up to id %s of %s, %s traces created",
                     self.id, end, high, created)
        return created, end - start + 1

    def _sms_materialize_progress(self, upto, done):
        self.env.cr.execute(SQL(
            "UPDATE mailing_mailing SET sms_materialized_upto = %s, sms_audience_pending = %s WHERE id = %s",
            upto, not done, self.id,
        ))
        self.invalidate_recordset(["sms_materialized_upto", "sms_audience_pending"])
