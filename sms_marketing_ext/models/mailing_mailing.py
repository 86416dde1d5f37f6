from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.link_tracker.models.link_tracker import LINK_TRACKER_MIN_CODE_LENGTH

from ..tools import sms_links, sms_quiet_hours, sms_segments, sms_tokens

SMS_CLASSES = [
    ("standard", "Standard"),
    ("flash", "Flash"),
    ("sim", "SIM"),
]


class MailingMailing(models.Model):
    """The SMS composer: sender, gateway, message class, quiet hours, the counter on the body as
    it will be sent and the send actions. The access checks, the cost estimate, the audience, its
    materialisation, the delivery, its results and the statistics of SMS mailings extend the model
    in their own files (``mailing_mailing_access.py``, ``mailing_mailing_cost.py``,
    ``mailing_mailing_audience.py``, ``mailing_mailing_materialize.py``, ``mailing_mailing_delivery.py``,
    ``mailing_mailing_delivery_results.py``, ``mailing_mailing_statistics.py``)."""

    _inherit = "mailing.mailing"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        help="The company whose senders, limits and gateway an SMS mailing uses.",
    )
    sms_sender_id = fields.Many2one(
        "sms.sender",
        "Sender",
        compute="_compute_sms_sender_id",
        store=True,
        readonly=False,
        check_company=True,
        domain="[('state', '=', 'approved'), ('company_id', '=', company_id)]",
        tracking=True,
        ondelete="restrict",
        help="What recipients see as the sender. Only approved senders of the mailing's company.",
    )
    sms_sender_accepts_replies = fields.Boolean(related="sms_sender_id.accepts_replies")
    sms_class = fields.Selection(
        SMS_CLASSES,
        "Message class",
        default="standard",
        required=True,
        help="Standard: the usual SMS, stored in the phone's inbox.\n"
        "Flash: shown at once on the screen and not stored.\n"
        "SIM: stored on the SIM card.",
    )
    # Counting, on the body as it will be sent (tracked links, opt-out footer).
    sms_encoding = fields.Selection(
        [("gsm7", "GSM 7-bit"), ("ucs2", "Unicode (UCS-2)")], "Encoding", compute="_compute_sms_counts"
    )
    sms_length = fields.Integer(
        "Length", compute="_compute_sms_counts",
        help="Characters as the network counts them: € [ ] { } ^ ~ | \\ and emojis count as two.",
    )
    sms_segment_count = fields.Integer(
        "SMS parts", compute="_compute_sms_counts",
        help="Parts per recipient (at least, when the length depends on the recipient).",
    )
    sms_non_gsm_chars = fields.Char(
        "Unicode characters", compute="_compute_sms_counts", help="The characters that force Unicode."
    )
    sms_optout_footer_text = fields.Char(
        "Opt-out footer", compute="_compute_sms_optout_footer_text",
        help="The footer added when the opt-out link is on, as counted: in the recipient's language "
        "when known, else in the mailing's (its responsible's).",
    )
    sms_length_varies = fields.Boolean(
        "Length depends on the recipient",
        compute="_compute_sms_counts",
        help="The text has placeholders ({{ object.name }}) rendered for each recipient: the counts are "
        "at least these. Each recipient's SMS is counted once rendered; one longer than the maximum "
        "number of parts is canceled.",
    )
    sms_provider_suffix = fields.Char(
        "Added by the gateway", compute="_compute_sms_provider_suffix",
        help="What the gateway appends to each message from this sender (OVHcloud's STOP mention): counted in "
        "the length, the parts and the cost, never part of the text sent.",
    )
    sms_max_segments = fields.Integer(related="company_id.sms_max_segments")
    sms_optout_required = fields.Boolean(compute="_compute_sms_optout_required")
    sms_gateway_id = fields.Many2one(
        "sms.gateway",
        "Gateway",
        compute="_compute_sms_gateway_id",
        store=True,
        readonly=False,
        check_company=True,
        domain="[('company_id', '=', company_id)]",
        ondelete="restrict",
        help="The gateway the SMS go through: the company's default one unless chosen.",
    )
    sms_quiet_hours_mode = fields.Selection(
        [("company", "Company setting"), ("custom", "Custom window"), ("off", "Send at any hour")],
        "Quiet hours",
        default="company",
        required=True,
        help="Send only inside a daily window of each recipient's local time; messages outside it wait.",
    )
    sms_send_window_start = fields.Float("Send from", default=8.0)
    sms_send_window_end = fields.Float("Send until", default=21.0)
    @api.depends("company_id", "mailing_type")
    def _compute_sms_sender_id(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.sms_sender_id = False
            elif not mailing.sms_sender_id or mailing.sms_sender_id.company_id != mailing.company_id:
                mailing.sms_sender_id = self.env["sms.sender"]._get_default_sender(
                    mailing.company_id or self.env.company
                )

    @api.depends("company_id", "mailing_type")
    def _compute_sms_gateway_id(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.sms_gateway_id = False
            elif not mailing.sms_gateway_id or mailing.sms_gateway_id.company_id != mailing.company_id:
                mailing.sms_gateway_id = self.env["sms.gateway"]._get_default_gateway(
                    mailing.company_id or self.env.company
                )

    @api.depends("mailing_type", "company_id")
    def _compute_email_from(self):
        """Stock fills the (required) e-mail sender from the user's address: a marketer without one
        could not save an SMS mailing, which never sends e-mail. Fall back on the company's address,
        else its name."""
        res = super()._compute_email_from()
        for mailing in self.filtered(lambda m: m.mailing_type == "sms" and not m.email_from):
            company = mailing.company_id or self.env.company
            mailing.email_from = company.email_formatted or company.name
        return res

    @api.depends("body_plaintext", "sms_allow_unsubscribe", "company_id", "mailing_type", "sms_sender_id.sender_type",
                 "sms_gateway_id.provider", "sms_gateway_id.ovh_no_stop_clause")
    def _compute_sms_counts(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.update(
                    {"sms_encoding": False, "sms_length": 0, "sms_segment_count": 0, "sms_non_gsm_chars": False,
                     "sms_length_varies": False}
                )
                continue
            analysis = sms_segments.analyze(mailing._sms_body_as_sent())
            mailing.update(
                {
                    "sms_encoding": analysis["encoding"],
                    "sms_length": analysis["length"],
                    "sms_segment_count": analysis["segments"],
                    "sms_non_gsm_chars": "".join(analysis["non_gsm_chars"]) or False,
                    "sms_length_varies": sms_links.has_placeholders(mailing.body_plaintext),
                }
            )

    @api.depends("mailing_type", "company_id", "sms_sender_id.sender_type", "sms_gateway_id.provider",
                 "sms_gateway_id.ovh_no_stop_clause")
    def _compute_sms_provider_suffix(self):
        # The live counter reads it: changing the gateway or the sender of an unsaved mailing recounts.
        for mailing in self:
            mailing.sms_provider_suffix = mailing._sms_provider_suffix() or False

    @api.depends("user_id", "company_id", "mailing_type")
    def _compute_sms_optout_footer_text(self):
        for mailing in self:
            mailing.sms_optout_footer_text = (
                mailing.sms_counter_context()["optout_footer"].strip() if mailing.mailing_type == "sms" else False
            )

    @api.depends("sms_sender_id.accepts_replies", "mailing_type")
    def _compute_sms_optout_required(self):
        # Stock's pipeline (no gateway of ours) sends as stock always did, with no such rule.
        for mailing in self:
            mailing.sms_optout_required = (
                mailing.mailing_type == "sms"
                and not mailing.sms_sender_id.accepts_replies
                and not mailing._sms_uses_stock_pipeline()
            )

    @api.onchange("sms_sender_id", "sms_gateway_id", "mailing_type")
    def _onchange_sms_optout_required(self):
        """Where recipients cannot reply STOP, the opt-out link is on by default (a new mailing
        included); the user may still untick it, and Send then says why it is needed."""
        if self.sms_optout_required:
            self.sms_allow_unsubscribe = True

    @api.constrains("sms_quiet_hours_mode", "sms_send_window_start", "sms_send_window_end")
    def _check_sms_send_window(self):
        for mailing in self.filtered(lambda m: m.sms_quiet_hours_mode == "custom"):
            if sms_quiet_hours.window_error(mailing.sms_send_window_start, mailing.sms_send_window_end):
                raise ValidationError(_("The send window runs between two different hours of the day (0 to 24)."))

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    @api.model
    def _sms_char_label(self, char):
        """How to name ``char`` (or a replacement such as "...") to a user: itself, or its name and
        code point when it shows nothing by itself (a tab, a no-break or zero-width space would
        otherwise read as an empty box)."""
        if char == " ":
            return _("a space")
        code = len(char) == 1 and sms_segments.invisible_code(char)
        if not code:
            return f"\u201c{char}\u201d"
        names = {
            "\t": _("tab"),
            "\u00a0": _("non-breaking space"),
            "\u202f": _("narrow non-breaking space"),
            "\u200b": _("zero-width space"),
            "\u200c": _("zero-width non-joiner"),
            "\u200d": _("zero-width joiner"),
            "\ufeff": _("zero-width no-break space"),
        }
        name = names.get(char) or (_("special space") if char.isspace() else _("invisible character"))
        return f"{name} ({code})"

    def action_sms_make_gsm_compatible(self):
        """Replace look-alikes in the body. The form saved a never-saved mailing before calling; the
        ``act_window_close`` that follows the notification reloads that same record in the form
        (a ``soft_reload`` would restore the form as it was opened: a blank new mailing)."""
        self.ensure_one()
        new_body, changes = sms_segments.to_gsm(self.body_plaintext or "")
        if not changes:
            message = _("Nothing to replace: no character has a GSM 7-bit look-alike.")
        else:
            self.body_plaintext = new_body
            message = _(
                "Replaced: %s.",
                ", ".join(
                    _("%(char)s by %(replacement)s (%(count)s x)", char=self._sms_char_label(change["char"]),
                      replacement=self._sms_char_label(change["replacement"]), count=change["count"])
                    if change["replacement"]
                    else _("%(char)s removed (%(count)s x)", char=self._sms_char_label(change["char"]),
                           count=change["count"])
                    for change in changes
                ),
            )
        left = sms_segments.analyze(self._sms_body_as_sent())["non_gsm_chars"]
        if left:
            message += " " + _("Still Unicode because of: %s", ", ".join(map(self._sms_char_label, left)))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Make GSM-compatible"),
                "message": message,
                "type": "success" if not left else "warning",
                "sticky": bool(left),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_sms_send_confirm(self):
        """The Send button: the checks first (they raise before anything is confirmed), then one
        dialog that says how many recipients, parts, credits and what the balance allows; its
        Send button queues the mailing without asking again."""
        self.ensure_one()
        self._sms_check_sendable()
        audience = self.env["mailing.sms.audience"].create({"mailing_id": self.id, "confirm_action": "put_in_queue"})
        return audience._action_open()

    def action_put_in_queue(self):
        self._sms_check_sendable()
        warning = self._sms_credit_warning("put_in_queue")
        if warning:
            return warning
        res = super().action_put_in_queue()
        self.filtered(lambda m: m.mailing_type == "sms")._sms_trigger_send_cron()
        return res

    def action_schedule(self):
        self._sms_check_sendable()
        return self._sms_credit_warning("schedule") or super().action_schedule()

    def action_send_mail(self, res_ids=None):
        self._sms_check_sendable()
        return super().action_send_mail(res_ids=res_ids)

    def action_send_sms(self, res_ids=None):
        """Stock sends through the SMS composer and the hourly sms.sms queue; ours materialises
        the audience as traces and hands them to the send cron at once. A company without a
        gateway of ours keeps stock's pipeline (Odoo IAP), as it had before the install."""
        stock = self.filtered(lambda m: m._sms_uses_stock_pipeline())
        if res_ids or stock:
            super(MailingMailing, stock if not res_ids else self).action_send_sms(res_ids=res_ids)
        ours = self - stock if not res_ids else self.browse()
        if ours:
            ours._sms_check_sendable()
            for mailing in ours:
                mailing._sms_get_gateway()
            ours.write({"state": "in_queue", "schedule_type": "now", "schedule_date": False})
            ours._sms_trigger_send_cron()
        return True

    # ------------------------------------------------------------
    # BODY AS SENT
    # ------------------------------------------------------------

    def _sms_short_link_base(self):
        self.ensure_one()
        return (self.company_id or self.env.company)._sms_short_link_base()

    def _sms_code_length(self):
        """Length of the link tracker codes this mailing's links get: the longest code so far
        (codes grow with the number of trackers), at least the stock minimum."""
        self.env["link.tracker.code"].flush_model(["code"])
        self.env.cr.execute("SELECT max(length(code)) FROM link_tracker_code")
        return max(self.env.cr.fetchone()[0] or 0, LINK_TRACKER_MIN_CODE_LENGTH)

    def _sms_lang(self):
        """Issue 13 §5: the language of the opt-out footer for a recipient whose own is unknown: the
        mailing's (its responsible's), else the company's, else English. Never the viewer's: the
        counter, the test and the send all count the same text."""
        mailing = self[:1]
        company = mailing.company_id or self.env.company
        return (mailing.user_id or self.env.user).lang or company.partner_id.lang or "en_US"

    def _sms_optout_footer_template(self, lang=None):
        """The footer appended to each SMS when the opt-out link is on, with %(url)s for the link,
        in ``lang`` (a recipient's language), else in the mailing's (``_sms_lang``)."""
        composer = self.env["sms.composer"].with_context(lang=lang or self._sms_lang())
        return "\n" + composer._get_unsubscribe_info("%(url)s")

    def _sms_recipient_langs(self, res_ids):
        """``{res_id: language}`` of the recipients whose record has one (contacts, leads...); the
        others (mailing list contacts) get the mailing's."""
        Model = self.env[self.mailing_model_real]
        if "lang" not in Model._fields:
            return {}
        return {record.id: record.lang for record in Model.browse(res_ids).sudo() if record.lang}

    def sms_counter_context(self):
        """What the live counter of the web client needs to count like the server: the tracked
        form of a link and the opt-out footer, with tokens of their real length."""
        mailing = self[:1]
        company = mailing.company_id or self.env.company
        short_base = company._sms_short_link_base()
        link, footer = sms_links.count_placeholders(
            short_base, mailing._sms_code_length(), self._sms_optout_footer_template()
        )
        return {"link": link, "optout_footer": footer, "provider_suffix": mailing._sms_provider_suffix()}

    def _sms_provider_suffix(self):
        """What the mailing's gateway adds to each message from its sender (OVHcloud's STOP
        mention...): part of the length, parts and cost, never of the text we send."""
        mailing = self[:1]
        if not mailing or mailing.mailing_type != "sms":
            return ""
        gateway = mailing.sms_gateway_id or self.env["sms.gateway"]._get_default_gateway(
            mailing.company_id or self.env.company)
        return gateway._sms_appended_text(mailing.sms_sender_id) if gateway else ""

    def _sms_body_as_sent(self):
        """The text every recipient gets at least (``{{ }}`` placeholders rendered empty), links
        in their tracked form and the opt-out footer, tokens as placeholders of their exact length,
        and what the gateway appends (:meth:`_sms_provider_suffix`)."""
        self.ensure_one()
        return sms_links.render_for_count(
            sms_links.strip_placeholders(self.body_plaintext),
            self._sms_short_link_base(),
            self._sms_code_length(),
            self._sms_optout_footer_template() if self.sms_allow_unsubscribe else None,
        ) + self._sms_provider_suffix()

    def _sms_link_trackers(self, urls):
        """The mailing's link tracker of each URL, in order (stock link_tracker, with the
        mailing's UTM values; created on first use and reused after)."""
        values = self._get_link_tracker_values()
        trackers = {url: self.env["link.tracker"].sudo().search_or_create({**values, "url": url})
                    for url in dict.fromkeys(urls)}
        return [trackers[url] for url in urls]

    def _sms_render_bodies(self, rows):
        """Each recipient's SMS text, exactly as sent, for ``rows`` of ``(trace id, res_id)``:
        dynamic placeholders (``{{ object.name }}``) rendered on the recipient's record as stock
        does, then every link in its tracked short form with the recipient's token, and the
        opt-out link with its own token (tokens have a fixed length: the counter's numbers hold).
        """
        self.ensure_one()
        body = self.body_plaintext or ""
        rendered = None
        if "{{" in body:
            rendered = self.env["mail.render.mixin"]._render_template(
                body, self.mailing_model_real, [res_id for _trace_id, res_id in rows], engine="inline_template"
            )
        short_base = self._sms_short_link_base()
        footers = {}  # language -> footer template
        langs, default_footer = {}, ""
        if self.sms_allow_unsubscribe:
            # Once per batch: the recipients' own languages, and the footer of the others.
            langs = self._sms_recipient_langs([res_id for _trace_id, res_id in rows])
            default_lang = self._sms_lang()
            default_footer = footers[default_lang] = self._sms_optout_footer_template(default_lang)

        def footer_of(res_id):
            lang = langs.get(res_id)
            if not lang:
                return default_footer
            if lang not in footers:
                footers[lang] = self._sms_optout_footer_template(lang)
            return footers[lang]

        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        templates = {}  # text -> (literals, link prefixes)

        def template(text):
            if text not in templates:
                literals, urls = sms_links.split_links(text)
                prefixes = [sms_links.short_link(short_base, tracker.code, "")
                            for tracker in self._sms_link_trackers(urls)]
                templates[text] = (literals, prefixes)
            return templates[text]

        bodies = {}
        optout_base = sms_links.optout_url(short_base, "")
        for trace_id, res_id in rows:
            literals, prefixes = template(rendered[res_id] if rendered is not None else body)
            link_token = sms_tokens.make_token(secret, "link", trace_id) if prefixes else ""
            footer = footer_of(res_id)
            footer_text = footer and footer % {
                "url": optout_base + sms_tokens.make_token(secret, "optout", trace_id)
            }
            bodies[trace_id] = sms_links.render(literals, prefixes, link_token, footer_text)
        return bodies

    # ------------------------------------------------------------
    # SEND WINDOW
    # ------------------------------------------------------------

    def _sms_send_window(self):
        """(start, end) hours of the quiet-hours window that applies, or None."""
        self.ensure_one()
        if self.sms_quiet_hours_mode == "custom":
            return self.sms_send_window_start, self.sms_send_window_end
        company = self.company_id or self.env.company
        if self.sms_quiet_hours_mode == "company" and company.sms_quiet_hours:
            return company.sms_send_window_start, company.sms_send_window_end
        return None
