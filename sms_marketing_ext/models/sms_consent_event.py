import logging

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..tools.sms_consent import mask_number
from ..tools.sms_keywords import START, STOP, classify_inbound, inbound_key, normalize_sender_number

_logger = logging.getLogger(__name__)

CONSENT_SOURCES = [
    ("link", "Opt-out link"),
    ("reply", "SMS reply"),
    ("import", "Import"),
    ("manual", "Manual"),
]


class SmsConsentEvent(models.Model):
    """One opt-out or opt-in of a phone number: what, when, and where it came from. Written by the
    code that changes the number's consent (never edited), so the history is an audit trail."""

    _name = "sms.consent.event"
    _description = "SMS consent record"
    _order = "date desc, id desc"
    _rec_name = "number"

    number = fields.Char("Phone number", required=True, index=True, readonly=True, help="In E.164 format.")
    action = fields.Selection(
        [("optout", "Opt-out"), ("optin", "Opt-in")], required=True, readonly=True
    )
    source = fields.Selection(CONSENT_SOURCES, required=True, readonly=True)
    date = fields.Datetime(required=True, default=fields.Datetime.now, readonly=True)
    message_date = fields.Datetime(
        "Message date",
        readonly=True,
        help="For SMS replies, when the person sent the message (the 'at' of the gateway's callback): "
        "replies are ordered by it, not by their arrival.",
    )
    message_key = fields.Char(
        readonly=True, copy=False, help="Identity of the SMS reply: a replayed callback is applied once."
    )
    mailing_id = fields.Many2one("mailing.mailing", readonly=True, ondelete="set null", index="btree_not_null")
    list_ids = fields.Many2many("mailing.list", string="Mailing lists", readonly=True)
    blacklist_id = fields.Many2one(
        "phone.blacklist", "Blacklist entry", readonly=True, ondelete="set null", index="btree_not_null"
    )
    note = fields.Text(readonly=True)
    user_id = fields.Many2one("res.users", "Done by", readonly=True, ondelete="set null")

    def init(self):
        res = super().init()
        # The export and the blacklist form look up the latest record of a number.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS sms_consent_event_number_date_idx "
                "ON sms_consent_event (number, date DESC, id DESC)"
            )
        )
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS sms_consent_event_message_key_uniq "
                "ON sms_consent_event (message_key) WHERE message_key IS NOT NULL"
            )
        )
        return res

    @api.model
    def _record(self, numbers, action, source=None, mailing=None, lists=None, blacklist=None, note=None):
        """Record ``action`` ("optout" or "optin") of each of ``numbers`` (E.164). ``source``,
        ``mailing`` and ``note`` default to the context's ``sms_consent_source`` ("manual" without
        one), ``sms_consent_mailing_id`` and ``sms_consent_note``; ``blacklist`` is the blacklist
        entries of the numbers, if any. The context's ``sms_consent_message_date`` and
        ``sms_consent_message_key`` describe the SMS reply being applied."""
        context = self.env.context
        source = source or context.get("sms_consent_source") or "manual"
        mailing_id = mailing.id if mailing else context.get("sms_consent_mailing_id") or False
        note = note if note is not None else context.get("sms_consent_note") or False
        user = self.env.user
        user_id = user.id if not user.share and not user._is_superuser() else False
        entries = {entry.number: entry.id for entry in (blacklist or [])}
        return self.sudo().create(
            [
                {
                    "number": number,
                    "action": action,
                    "source": source,
                    "mailing_id": mailing_id,
                    "list_ids": [(6, 0, lists.ids)] if lists else False,
                    "blacklist_id": entries.get(number, False),
                    "note": note,
                    "user_id": user_id,
                    "message_date": context.get("sms_consent_message_date") or False,
                    "message_key": context.get("sms_consent_message_key") or False,
                }
                for number in dict.fromkeys(numbers)
                if number
            ]
        )

    # ------------------------------------------------------------
    # SMS replies (STOP / START)
    # ------------------------------------------------------------

    @api.model
    def _sms_apply_reply(self, gateway, inbound):
        """Apply a STOP or START reply (``inbound``: ``{"from", "to", "body", "at"}``) received through
        ``gateway``, whatever the provider and however it came (a webhook, or a poll of the
        provider); return ``(answer payload, HTTP status)``. A provider that
        recognised the keyword itself says so in ``inbound["keyword"]`` (Twilio's ``OptOutType``), one
        that identifies its messages gives ``inbound["message_id"]`` (a retried call is applied once)."""
        keyword = inbound.get("keyword") or classify_inbound(inbound["body"])
        if keyword is None:
            _logger.info("SMS gateway %s: inbound message from %s ignored (no keyword)", gateway.id, inbound["from"])
            return {"ok": True, "action": None}, 200
        number = normalize_sender_number(inbound["from"])
        if not number:
            _logger.warning("SMS gateway %s: inbound %s from unusable number %r", gateway.id, keyword, inbound["from"])
            return {"ok": False, "error": "'from' is not a phone number in international format"}, 400
        key, ignored = self.sudo()._sms_reply_check(
            number, keyword, inbound["to"], inbound["body"], inbound["at"], message_id=inbound.get("message_id")
        )
        if ignored:
            _logger.info("SMS gateway %s: inbound %s from %s dated %s not applied (%s)",
                         gateway.id, keyword.upper(), number, inbound["at"], ignored)
            return {"ok": True, "action": None, "ignored": ignored}, 200
        text = inbound["body"].strip()
        blacklist = self.env["phone.blacklist"].sudo().with_context(
            sms_consent_message_date=inbound["at"],
            sms_consent_message_key=key,
            sms_consent_source="reply",
            sms_consent_note=_("Replied \"%(text)s\" to %(to)s (gateway %(gateway)s)",
                               text=text[:200], to=inbound["to"] or "-", gateway=gateway.name),
        )
        if keyword == STOP:
            blacklist._add(
                [number],
                message=_(
                    "Blacklisted: replied \"%(text)s\" to %(to)s (gateway %(gateway)s).",
                    text=text,
                    to=inbound["to"] or "-",
                    gateway=gateway.name,
                ),
            )
        elif keyword == START:
            blacklist._remove(
                [number],
                message=_(
                    "Removed from the blacklist: replied \"%(text)s\" to %(to)s (gateway %(gateway)s).",
                    text=text,
                    to=inbound["to"] or "-",
                    gateway=gateway.name,
                ),
            )
        _logger.info("SMS gateway %s: inbound %s from %s applied", gateway.id, keyword.upper(), number)
        return {"ok": True, "action": keyword}, 200

    @api.model
    def _sms_reply_check(self, number, keyword, to, body, at, message_id=None):
        """Whether a STOP or START reply of ``number`` dated ``at`` (naive UTC) is to be applied.

        Replies are ordered by their date, not by their arrival: a START dated before the latest
        opt-out of the number (from any source) changes nothing; a STOP dated before the person's
        latest opt-in (reply or opt-out link: a user lifting the blacklist never voids the
        person's own STOP) changes nothing. A callback already applied (same number, recipient,
        text and date, or same ``message_id`` of the provider) is not applied again. Concurrent
        replies of a number are serialised.

        :return: ``(key, None)`` to apply with ``key`` the message's identity, else
            ``(key, why)`` with ``why`` in ``"replayed"``, ``"outdated"``.
        """
        # A provider's own message id identifies a message better than its date of arrival.
        key = inbound_key(number, to, f"id:{message_id}", "") if message_id else inbound_key(
            number, to, body, at.isoformat())
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", f"sms.consent:{number}"))
        if self.sudo().search_count([("message_key", "=", key)], limit=1):
            return key, "replayed"
        if keyword == START:
            latest = SQL("action = 'optout'")
        elif keyword == STOP:
            latest = SQL("action = 'optin' AND source IN ('reply', 'link')")
        else:
            raise ValueError(keyword)
        self.env.cr.execute(SQL(
            "SELECT max(COALESCE(message_date, date)) FROM sms_consent_event WHERE number = %s AND %s",
            number, latest,
        ))
        latest_date = self.env.cr.fetchone()[0]
        if latest_date and at < latest_date:
            return key, "outdated"
        return key, None

    # ------------------------------------------------------------
    # Opt-out link
    # ------------------------------------------------------------

    @api.model
    def _sms_link_subscriptions(self, trace):
        """The mailing-list subscriptions an opt-out link of ``trace`` acts on: those, in the
        mailing's lists, of the recipient's contact and of the contacts with the recipient's number.
        Empty when the mailing has no lists (then the link blacklists the number)."""
        mailing = trace.mass_mailing_id
        Subscription = self.env["mailing.subscription"].sudo()
        if mailing.mailing_model_real != "mailing.contact" or not mailing.contact_list_ids:
            return Subscription
        contacts = [("contact_id.phone_sanitized", "=", trace.sms_number)]
        if trace.model == "mailing.contact" and trace.res_id:
            contacts = ["|", ("contact_id", "=", trace.res_id), *contacts]
        return Subscription.search([("list_id", "in", mailing.contact_list_ids.ids), *contacts])

    @api.model
    def _sms_link_status(self, trace):
        """What the opt-out page of ``trace`` shows: ``{"number", "masked_number", "lists", "opted_out"}``,
        ``lists`` the mailing lists concerned (empty: the blacklist)."""
        subscriptions = self._sms_link_subscriptions(trace)
        if subscriptions:
            opted_out = all(subscriptions.mapped("opt_out"))
        else:
            opted_out = bool(
                self.env["phone.blacklist"].sudo().search_count([("number", "=", trace.sms_number)], limit=1)
            )
        return {
            "number": trace.sms_number,
            "masked_number": mask_number(trace.sms_number),
            "lists": subscriptions.list_id,
            "opted_out": opted_out,
        }

    @api.model
    def _sms_link_apply(self, trace, opt_out):
        """Opt the recipient of ``trace`` out (``opt_out`` True) or back in, through the opt-out link:
        in the mailing's lists, else in the blacklist. Doing it twice changes nothing more and
        records nothing more.

        :return: True when something changed.
        """
        number = trace.sms_number
        mailing = trace.mass_mailing_id
        action = "optout" if opt_out else "optin"
        subscriptions = self._sms_link_subscriptions(trace)
        if subscriptions:
            todo = subscriptions.filtered(lambda sub: bool(sub.opt_out) != opt_out)
            if not todo:
                return False
            todo.with_context(sms_consent_skip=True).write({"opt_out": opt_out})
            self._record([number], action, source="link", mailing=mailing, lists=todo.list_id)
            return True
        Blacklist = self.env["phone.blacklist"].sudo().with_context(
            sms_consent_source="link", sms_consent_mailing_id=mailing.id
        )
        blacklisted = bool(Blacklist.search_count([("number", "=", number)], limit=1))
        if blacklisted == opt_out:
            return False
        if opt_out:
            Blacklist._add([number], message=_("Blacklisted through the opt-out link of the SMS mailing %s.",
                                               mailing.subject or mailing.id))
        else:
            Blacklist._remove([number], message=_("Removed from the blacklist through the opt-out link of "
                                                  "the SMS mailing %s (undo).", mailing.subject or mailing.id))
        return True
