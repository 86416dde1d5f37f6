import ast
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, split_every

from ..tools import sms_audience, sms_phone

# Recipients whose numbers are normalised in Python (models without a stored phone_sanitized)
# are streamed in chunks of this size, so memory stays flat whatever the audience.
AUDIENCE_CHUNK = 20000


def _raw_number_sql(raw_fields):
    """The first non-blank of the record's number columns (SQL), NULL when all are blank."""
    return SQL("COALESCE(%s)", SQL(", ").join(SQL("NULLIF(btrim(%s), '')", field) for field in raw_fields))


class MailingMailingAudience(models.Model):
    """Who an SMS mailing goes to: the recipients' filter, where their numbers are, one SQL
    statement that classifies the audience (missing and invalid numbers, blacklist, list opt-outs,
    duplicates, frequency cap, country), its summary (Check recipients) and its materialisation
    as traces."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    sms_audience_pending = fields.Boolean(
        "Audience being prepared",
        readonly=True,
        copy=False,
        help="Sending has started with the first recipients; the send cron prepares the rest of the "
        "audience chunk by chunk while it sends.",
    )
    sms_materialized_upto = fields.Integer(
        "Audience prepared up to",
        readonly=True,
        copy=False,
        help="Technical: the audience's records up to this id have their messages; preparation resumes "
        "after it.",
    )

    @api.constrains("mailing_domain", "mailing_model_id")
    def _check_mailing_domain_sms(self):
        for mailing in self.filtered(lambda m: m.mailing_model_id and m.mailing_domain):
            mailing._sms_parse_domain()

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_sms_check_recipients(self):
        self.ensure_one()
        return self.env["mailing.sms.audience"].create({"mailing_id": self.id})._action_open()

    # ------------------------------------------------------------
    # RECIPIENTS FILTER
    # ------------------------------------------------------------

    def _sms_parse_domain(self):
        """The recipients' filter as a domain, or a ValidationError in the user's terms. Unlike
        stock (which silently sends to nobody), a filter that does not parse, or that names
        unknown fields, is refused."""
        self.ensure_one()
        model_label = self.mailing_model_id.name or self.mailing_model_real
        try:
            domain = ast.literal_eval(self.mailing_domain or "[]")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValidationError(
                _("The recipients filter of %(mailing)s is not a valid filter: %(domain)s",
                  mailing=self.subject or _("this mailing"), domain=self.mailing_domain[:200])
            ) from None
        if not isinstance(domain, list | tuple):
            raise ValidationError(_("The recipients filter must be a list of conditions, not %s.", domain))
        try:
            domain = expression.normalize_domain(list(domain))
            self.env[self.mailing_model_real].sudo()._where_calc(domain)
        except (ValueError, TypeError, KeyError, AssertionError) as error:
            raise ValidationError(
                _("The recipients filter of %(mailing)s does not fit %(model)s: %(error)s",
                  mailing=self.subject or _("this mailing"), model=model_label, error=error)
            ) from None
        return domain

    def _parse_mailing_domain(self):
        if self.mailing_type == "sms":
            return self._sms_parse_domain()
        return super()._parse_mailing_domain()

    def _sms_recipients_query(self):
        """The records of the recipients' filter this mailing may reach, as a Query (nothing is
        loaded): with the access rights, record rules and field access of its authors, like
        stock's ``search`` (a marketer counts and reaches only the records they may read, and
        cannot probe others by filter), and of the current user when a user asks (Check
        recipients). The send cron runs as superuser: the authors' rights are applied explicitly.
        Each author's rules apply with all of their companies, so that the check and the send
        count the same records."""
        self.ensure_one()
        domain = self._parse_mailing_domain()
        Target = self.env[self.mailing_model_real]
        users = [(author, author.company_ids) for author in self._sms_authors()]
        if not self.env.su and self.env.user not in self._sms_authors():
            users.append((self.env.user, self.env.companies))
        if not users:
            return Target.sudo()._where_calc(domain)
        query = None
        for user, companies in users:
            model = Target.with_user(user).with_context(allowed_company_ids=companies.ids)
            user_query = model._search(domain)  # checks the model's and the filter's fields' access
            if query is None:
                query = user_query
            else:
                model._apply_ir_rules(query, "read")
        return query

    def _sms_audience_mailings(self):
        """This mailing and its A/B testing siblings: a number is targeted once across them."""
        self.ensure_one()
        mailings = self
        if self.ab_testing_enabled and self.campaign_id:
            mailings |= self._get_ab_testing_siblings_mailings()
        return mailings

    # ------------------------------------------------------------
    # AUDIENCE SQL
    # ------------------------------------------------------------

    def _sms_number_source(self):
        """How to find the recipients' numbers on the target model, as
        (kind, raw number SQL expressions, extra FROM SQL, number SQL expression):

        - "sanitized": the model stores phone_sanitized (mail.thread.phone: contacts, leads...);
        - "partner": the numbers of the record's partner (stored phone_sanitized on res.partner);
        - "python": stored number fields normalised with sms_phone in chunks.
        """
        Target = self.env[self.mailing_model_real]
        table = Target._table
        number_fields = [
            fname for fname in Target._phone_get_number_fields()
            if fname in Target._fields and Target._fields[fname].store and Target._fields[fname].type == "char"
        ]
        raw = [SQL.identifier("t", fname) for fname in number_fields]
        if "phone_sanitized" in Target._fields and Target._fields["phone_sanitized"].store and raw:
            return "sanitized", raw, SQL("%s t", SQL.identifier(table)), SQL("t.phone_sanitized")
        if number_fields:
            return "python", raw, SQL("%s t", SQL.identifier(table)), None
        partner_field = next(
            (fname for fname in Target._mail_get_partner_fields()
             if Target._fields[fname].store and Target._fields[fname].type == "many2one"),
            None,
        )
        if partner_field:
            return (
                "partner",
                [SQL("p.mobile"), SQL("p.phone")],
                SQL("%s t LEFT JOIN res_partner p ON p.id = %s", SQL.identifier(table),
                    SQL.identifier("t", partner_field)),
                SQL("p.phone_sanitized"),
            )
        raise UserError(
            _("%s has no phone number field: it cannot receive SMS.", self.mailing_model_id.name)
        )

    def _sms_candidates_sql(self, id_range=None):
        """SQL of the remaining recipients: (res_id, raw, number) for every record of the
        filter that no trace of this mailing (or its A/B siblings) covers yet. Everything stays
        in PostgreSQL: no id list is loaded into Python."""
        self.ensure_one()
        query = self._sms_recipients_query()
        if id_range:
            # The range inside the filter's query too: a chunk reads its own records only.
            query.add_where(SQL("%s BETWEEN %s AND %s", SQL.identifier(query.table, "id"), *id_range))
        kind, raw_fields, from_sql, number_sql = self._sms_number_source()
        raw_sql = _raw_number_sql(raw_fields)
        range_sql = SQL("AND t.id BETWEEN %s AND %s", *id_range) if id_range else SQL()
        # The range on the traces too: whatever plan PostgreSQL picks (its statistics lag behind
        # a mailing's traces growing chunk by chunk), a chunk reads only its own range's traces.
        done_range_sql = SQL("AND done.res_id BETWEEN %s AND %s", *id_range) if id_range else SQL()
        # "mass_mailing_id + 0" below: the traces already made are looked up by record (the index
        # on (res_id, mass_mailing_id)), never through stock's index on mass_mailing_id alone.
        # With the statistics of a mailing whose traces are still being created (one row, they
        # say), PostgreSQL chose that index and read every trace of the mailing for each record:
        # 5.5 s per 500 records at 80,000 traces (measured), so materialising 100k took minutes.
        sample_sql = SQL()
        if self.ab_testing_enabled and not self.ab_testing_is_winner_mailing:
            # A/B test: this mailing gets its share of the whole filter, picked at random but
            # stable for the mailing (re-running picks the same recipients).
            self.env.cr.execute(SQL("SELECT count(*) FROM (%s) q", query.select()))
            share = max(int(self.env.cr.fetchone()[0] * self.ab_testing_pc / 100), 1)
            sample_sql = SQL("ORDER BY md5(t.id::text || %s) LIMIT %s", str(self.id), share)
        if kind == "python":
            from_sql = SQL("sms_ext_audience_numbers t")
            number_sql = SQL("t.number")
            raw_sql = SQL("t.raw")
        return SQL(
            """
            SELECT t.id AS res_id, %(raw)s AS raw, %(number)s AS number
              FROM %(from)s
             WHERE t.id IN %(ids)s %(range)s
               AND NOT EXISTS (
                   SELECT 1 FROM mailing_trace done
                    WHERE done.res_id = t.id AND done.mass_mailing_id + 0 = ANY(%(mailings)s)
                      AND done.trace_type = 'sms' AND done.model = %(model)s %(done_range)s)
             %(sample)s
            """,
            raw=raw_sql,
            number=number_sql,
            ids=query.subselect(),
            range=range_sql,
            done_range=done_range_sql,
            sample=sample_sql,
            **{"from": from_sql},
            mailings=self._sms_audience_mailings().ids,
            model=self.mailing_model_real,
        )

    def _sms_prepare_python_numbers(self, id_range=None):
        """For models without a stored normalised number: stream the filter's records (those of
        ``id_range`` when given) in chunks, normalise their numbers with sms_phone, by stock's rule
        for phone_sanitized (record's country, else the company's) and
        COPY them into a temporary table that the audience SQL reads like a column (dropped at
        the end of the transaction)."""
        self.ensure_one()
        Target = self.env[self.mailing_model_real]
        _kind, raw_fields, from_sql, _number = self._sms_number_source()
        country_field = Target._phone_get_country_field()
        country_sql = (
            SQL("c.code")
            if country_field and Target._fields[country_field].store else SQL("NULL")
        )
        country_join = (
            SQL("LEFT JOIN res_country c ON c.id = %s", SQL.identifier("t", country_field))
            if country_field and Target._fields[country_field].store else SQL()
        )
        company_country = (self.company_id or self.env.company).country_id
        cr = self.env.cr
        cr.execute(SQL(
            "CREATE TEMP TABLE IF NOT EXISTS sms_ext_audience_numbers (id int PRIMARY KEY, raw text, number text)"
            " ON COMMIT DROP"
        ))
        cr.execute(SQL("TRUNCATE sms_ext_audience_numbers"))
        query = self._sms_recipients_query()
        if id_range:
            query.add_where(SQL("%s BETWEEN %s AND %s", SQL.identifier(query.table, "id"), *id_range))
        raw_sql = _raw_number_sql(raw_fields)
        cursor_name = f"sms_ext_numbers_{self.id}"
        cr.execute(SQL(
            "DECLARE %s NO SCROLL CURSOR FOR SELECT t.id, %s, %s FROM %s %s WHERE t.id IN %s",
            SQL.identifier(cursor_name), raw_sql, country_sql, from_sql, country_join, query.subselect(),
        ))
        cache = {}
        while True:
            cr.execute(SQL("FETCH %s FROM %s", AUDIENCE_CHUNK, SQL.identifier(cursor_name)))
            rows = cr.fetchall()
            if not rows:
                break
            values = []
            for res_id, raw, country_code in rows:
                code = country_code or company_country.code
                key = (raw, code)
                if key not in cache:
                    cache[key] = sms_phone.normalize(raw, code).number
                values.append((res_id, raw, cache[key]))
            for chunk in split_every(5000, values):
                cr.execute(SQL(
                    "INSERT INTO sms_ext_audience_numbers (id, raw, number) "
                    "SELECT * FROM unnest(%s::int[], %s::text[], %s::text[])",
                    [v[0] for v in chunk], [v[1] for v in chunk], [v[2] for v in chunk],
                ))
            if len(cache) > 200000:
                cache.clear()
        cr.execute(SQL("CLOSE %s", SQL.identifier(cursor_name)))

    def _sms_optout_sql(self):
        """Condition (on the candidate ``c``) of a recipient opted out of the mailing's lists:
        opted out of every list of the mailing it is subscribed to (as stock decides). Subscriptions
        created through the contact's list_ids have opt_out NULL: that is subscribed."""
        if self.mailing_model_real != "mailing.contact" or not self.contact_list_ids:
            return SQL("FALSE")
        return SQL(
            """(EXISTS (SELECT 1 FROM mailing_subscription s
                         WHERE s.contact_id = c.res_id AND s.list_id = ANY(%(lists)s) AND s.opt_out IS TRUE)
                AND NOT EXISTS (SELECT 1 FROM mailing_subscription s
                         WHERE s.contact_id = c.res_id AND s.list_id = ANY(%(lists)s) AND s.opt_out IS NOT TRUE))""",
            lists=self.contact_list_ids.ids,
        )

    def _sms_cap_sql(self):
        """Condition (on a deduplicated candidate ``d``) of a number that received a marketing
        SMS in the company's frequency-cap window."""
        hours = (self.company_id or self.env.company).sms_frequency_cap_hours
        if not hours:
            return SQL("FALSE")
        return SQL(
            """EXISTS (SELECT 1 FROM mailing_trace h
                        WHERE h.trace_type = 'sms' AND h.sms_number = d.number
                          AND h.sent_datetime >= %(since)s
                          AND h.trace_status IN ('pending', 'sent', 'open', 'reply', 'bounce')
                          AND h.mass_mailing_id <> ALL(%(mailings)s))""",
            since=fields.Datetime.now() - timedelta(hours=hours),
            mailings=self._sms_audience_mailings().ids,
        )

    def _sms_audience_sql(self, id_range=None):
        """SQL of the classified remaining audience: (res_id, number, country, failure_type),
        failure_type NULL for the recipients that will receive the SMS. One statement: missing
        and invalid numbers, blacklist, list opt-outs, duplicates (within the audience and with
        numbers this mailing or its A/B siblings already target) and the frequency cap."""
        codes = sms_audience.calling_codes()
        return SQL(
            """
            WITH codes(code, country) AS (SELECT * FROM unnest(%(codes)s::text[], %(countries)s::text[])),
            c AS (%(candidates)s),
            pre AS (
                SELECT c.res_id, c.number,
                       CASE WHEN c.raw IS NULL THEN 'sms_number_missing'
                            WHEN c.number IS NULL THEN 'sms_number_format'
                            WHEN EXISTS (SELECT 1 FROM phone_blacklist bl
                                          WHERE bl.number = c.number AND bl.active) THEN 'sms_blacklist'
                            WHEN %(optout)s THEN 'sms_optout'
                       END AS reason
                  FROM c
            ),
            d AS (
                SELECT pre.*,
                       CASE WHEN pre.reason IS NULL AND (
                                row_number() OVER (PARTITION BY pre.number, pre.reason IS NULL ORDER BY pre.res_id) > 1
                                OR EXISTS (SELECT 1 FROM mailing_trace seen
                                            WHERE seen.mass_mailing_id = ANY(%(mailings)s)
                                              AND seen.trace_type = 'sms' AND seen.sms_number = pre.number
                                              AND seen.sms_uuid IS NOT NULL))
                            THEN 'sms_duplicate' ELSE pre.reason END AS reason2
                  FROM pre
            )
            SELECT d.res_id, d.number, COALESCE(code1.country, code2.country, code3.country) AS country,
                   CASE WHEN d.reason2 IS NULL AND %(cap)s THEN 'sms_capped' ELSE d.reason2 END AS failure_type
              FROM d
              -- Calling codes have 1 to 3 digits and none is a prefix of another: one of these
              -- matches. Three equality joins (hash joins) rather than one OR: 10x faster at 100k.
              LEFT JOIN codes code1 ON code1.code = substr(d.number, 2, 1)
              LEFT JOIN codes code2 ON code2.code = substr(d.number, 2, 2)
              LEFT JOIN codes code3 ON code3.code = substr(d.number, 2, 3)
            """,
            codes=[code for code, _country in codes],
            countries=[country for _code, country in codes],
            candidates=self._sms_candidates_sql(id_range),
            optout=self._sms_optout_sql(),
            mailings=self._sms_audience_mailings().ids,
            cap=self._sms_cap_sql(),
        )

    def _sms_audience_sql_setup(self):
        """Session settings for the audience queries: PostgreSQL's JIT compiles these one-off
        queries for seconds (5 of 7 s at 100k recipients) and gains nothing, so it is off for
        the rest of the transaction."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))

    # ------------------------------------------------------------
    # SUMMARY
    # ------------------------------------------------------------

    def _sms_audience_summary(self):
        """Who would receive this mailing if it were sent now, computed in one SQL query:
        ``{total, valid, missing, invalid, duplicates, blacklisted, opted_out, capped,
        countries: {ISO code: valid recipients}}`` over the recipients not yet targeted."""
        self.ensure_one()
        self.env.flush_all()  # the SQL below reads contacts, subscriptions, blacklist and traces
        self._sms_audience_sql_setup()
        if self._sms_number_source()[0] == "python":
            self._sms_prepare_python_numbers()
        self.env.cr.execute(SQL(
            "SELECT a.failure_type, a.country, count(*) FROM (%s) a GROUP BY 1, 2",
            self._sms_audience_sql(),
        ))
        summary = dict.fromkeys(["total", "valid", *sms_audience.SUMMARY_KEYS.values()], 0)
        summary["countries"] = {}
        for failure_type, country, count in self.env.cr.fetchall():
            summary["total"] += count
            if failure_type:
                summary[sms_audience.SUMMARY_KEYS[failure_type]] += count
            else:
                summary["valid"] += count
                key = country or "??"
                summary["countries"][key] = summary["countries"].get(key, 0) + count
        return summary
