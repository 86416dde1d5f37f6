from odoo import _, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.link_tracker.models.link_tracker import LINK_TRACKER_MIN_CODE_LENGTH

from ..tools import sms_links, sms_segments

SMS_CLASSES = [
    ("standard", "Standard"),
    ("flash", "Flash"),
    ("sim", "SIM"),
]


class MailingMailing(models.Model):
    _inherit = "mailing.mailing"

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
        "Length", compute="_compute_sms_counts", help="Septets in GSM 7-bit, UTF-16 code units in Unicode."
    )
    sms_segment_count = fields.Integer("SMS parts", compute="_compute_sms_counts", help="Parts per recipient.")
    sms_non_gsm_chars = fields.Char(
        "Unicode characters", compute="_compute_sms_counts", help="The characters that force Unicode."
    )
    sms_max_segments = fields.Integer(related="company_id.sms_max_segments")
    sms_optout_required = fields.Boolean(compute="_compute_sms_optout_required")

    @api.depends("company_id", "mailing_type")
    def _compute_sms_sender_id(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.sms_sender_id = False
            elif not mailing.sms_sender_id or mailing.sms_sender_id.company_id != mailing.company_id:
                mailing.sms_sender_id = self.env["sms.sender"]._get_default_sender(
                    mailing.company_id or self.env.company
                )

    @api.depends("body_plaintext", "sms_allow_unsubscribe", "company_id", "mailing_type")
    def _compute_sms_counts(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.update(
                    {"sms_encoding": False, "sms_length": 0, "sms_segment_count": 0, "sms_non_gsm_chars": False}
                )
                continue
            analysis = sms_segments.analyze(mailing._sms_body_as_sent())
            mailing.update(
                {
                    "sms_encoding": analysis["encoding"],
                    "sms_length": analysis["length"],
                    "sms_segment_count": analysis["segments"],
                    "sms_non_gsm_chars": "".join(analysis["non_gsm_chars"]) or False,
                }
            )

    @api.depends("sms_sender_id.accepts_replies", "mailing_type")
    def _compute_sms_optout_required(self):
        for mailing in self:
            mailing.sms_optout_required = mailing.mailing_type == "sms" and not mailing.sms_sender_id.accepts_replies

    # ------------------------------------------------------------
    # Body as sent
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

    def _sms_optout_footer_template(self):
        """The footer appended to each SMS when the opt-out link is on, with %(url)s for the link."""
        return "\n" + self.env["sms.composer"]._get_unsubscribe_info("%(url)s")

    def sms_counter_context(self):
        """What the live counter of the web client needs to count like the server: the tracked
        form of a link and the opt-out footer, with tokens of their real length."""
        mailing = self[:1]
        company = mailing.company_id or self.env.company
        short_base = company._sms_short_link_base()
        code_length = mailing._sms_code_length()
        return {
            "link": sms_links.short_link(short_base, "x" * code_length, "x" * sms_links.LINK_TOKEN_LENGTH),
            "optout_footer": self._sms_optout_footer_template()
            % {"url": sms_links.optout_url(short_base, "x" * sms_links.OPTOUT_TOKEN_LENGTH)},
        }

    def _sms_body_as_sent(self):
        self.ensure_one()
        return sms_links.render_for_count(
            self.body_plaintext or "",
            self._sms_short_link_base(),
            self._sms_code_length(),
            self._sms_optout_footer_template() if self.sms_allow_unsubscribe else None,
        )

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_sms_make_gsm_compatible(self):
        self.ensure_one()
        new_body, changes = sms_segments.to_gsm(self.body_plaintext or "")
        if not changes:
            message = _("Nothing to replace: no character has a GSM 7-bit look-alike.")
        else:
            self.body_plaintext = new_body
            message = _(
                "Replaced: %s.",
                ", ".join(
                    _("%(char)r by %(replacement)r (%(count)s x)", **change) if change["replacement"]
                    else _("%(char)r removed (%(count)s x)", **change)
                    for change in changes
                ),
            )
        left = sms_segments.analyze(self._sms_body_as_sent())["non_gsm_chars"]
        if left:
            message += " " + _("Still Unicode because of: %s", " ".join(left))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Make GSM-compatible"),
                "message": message,
                "type": "success" if not left else "warning",
                "sticky": bool(left),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _sms_check_sendable(self):
        """Raise a UserError in the user's terms when an SMS mailing cannot be sent or scheduled."""
        for mailing in self.filtered(lambda m: m.mailing_type == "sms"):
            sender = mailing.sms_sender_id
            if sender and sender.state != "approved":
                raise UserError(
                    _(
                        "The sender %(sender)s of %(mailing)s is not approved (%(state)s): "
                        "only approved senders can send.",
                        sender=sender.name,
                        mailing=mailing.subject,
                        state=dict(sender._fields["state"]._description_selection(self.env))[sender.state],
                    )
                )
            if sender and sender.company_id != mailing.company_id:
                raise UserError(_("The sender %s belongs to another company than the mailing.", sender.name))
            if not (mailing.body_plaintext or "").strip():
                raise UserError(_("The SMS mailing %s has no content.", mailing.subject))
            limit = (mailing.company_id or self.env.company).sms_max_segments
            if mailing.sms_segment_count > limit:
                raise UserError(
                    _(
                        "%(mailing)s needs %(parts)s SMS parts per recipient, more than the maximum of %(max)s. "
                        "Shorten the message or use GSM characters only (Unicode parts hold 67 characters, "
                        "GSM parts 153).",
                        mailing=mailing.subject,
                        parts=mailing.sms_segment_count,
                        max=limit,
                    )
                )
            if mailing.sms_optout_required and not mailing.sms_allow_unsubscribe:
                raise UserError(
                    _(
                        "Recipients cannot reply STOP to %(sender)s: include the opt-out link in %(mailing)s "
                        "so that they can unsubscribe.",
                        sender=sender.name or _("the gateway's default sender"),
                        mailing=mailing.subject,
                    )
                )

    def action_put_in_queue(self):
        self._sms_check_sendable()
        return super().action_put_in_queue()

    def action_schedule(self):
        self._sms_check_sendable()
        return super().action_schedule()

    def action_send_mail(self, res_ids=None):
        self._sms_check_sendable()
        return super().action_send_mail(res_ids=res_ids)
