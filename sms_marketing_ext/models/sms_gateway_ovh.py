import base64
import logging
import re
import time
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..tools.providers.base import GatewayAccessError, GatewayError
from ..tools.providers.ovh import ENDPOINTS, STOP_MENTION, STOP_NUMBER, OvhClient
from ..tools.sms_keywords import STOP, normalize_sender_number

_logger = logging.getLogger(__name__)

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"
COUNTRY_LIST_RE = re.compile(r"^\s*[A-Za-z]{2}(\s*[,; ]\s*[A-Za-z]{2})*\s*$")
# The poll (cron "SMS Marketing: poll OVHcloud"): a message whose send answer was lost is looked up
# by its tag once it is this old (OVH may still be creating it), then again at most this often.
POLL_LOST_ANSWER_AFTER = timedelta(minutes=5)
POLL_LOST_ANSWER_EVERY = timedelta(minutes=30)
# Replies are read again over this much time before the newest one read (they are applied once).
INBOUND_OVERLAP = timedelta(minutes=10)
# Receipts of outgoing SMS are listed from the oldest pending message's sending, minus this.
OUTGOING_MARGIN = timedelta(minutes=5)
MAX_POLLED_TRACES = 50000


class SmsGatewayOvh(models.Model):
    """Provider ``ovh``: OVHcloud SMS through OVH's signed REST API (the official ``ovh`` client).
    Balance from the service's ``creditsLeft``, prices from OVH's rates of the listed countries;
    senders synced from and requested to OVH. OVH calls nobody: the *poll OVHcloud* cron reads
    the receipts of recent messages and the replies (STOP / START) from OVH's outgoing and incoming
    resources; the settle cron asks OVH by tag about the messages still pending hours later.
    OVH has no idempotency key, but finds a message by its tag: a send whose answer was lost is
    looked up at once, and never sent again (outcome unknown until OVH has it or says it has not)."""

    _inherit = "sms.gateway"  # one file per provider on purpose: pylint: disable=consider-merging-classes-inherited

    provider = fields.Selection(selection_add=[("ovh", "OVHcloud SMS")], ondelete={"ovh": "cascade"})
    ovh_endpoint = fields.Char(
        "OVH endpoint", default="ovh-eu", tracking=True,
        help=f"Where the OVH account lives: {', '.join(ENDPOINTS)}.",
    )
    ovh_application_key = fields.Char("Application key", tracking=True)
    ovh_application_secret = fields.Char("Application secret", copy=False, groups=ADMIN_GROUP)
    ovh_consumer_key = fields.Char("Consumer key", copy=False, groups=ADMIN_GROUP)
    ovh_service_name = fields.Char(
        "SMS service", tracking=True, help="The SMS account's name in OVH's control panel, e.g. sms-ab12345-1."
    )
    ovh_no_stop_clause = fields.Boolean(
        "No OVH STOP mention", tracking=True,
        help="Non-commercial messages only: OVH then does not append its STOP mention to messages from an "
        "alphanumeric sender. Otherwise the mention is part of every message and of its length.",
    )
    ovh_sender_for_response = fields.Boolean(
        "Short number for replies", tracking=True,
        help="Messages without a sender go from a short number that accepts replies (France only).",
    )
    ovh_validity = fields.Integer(
        "OVH validity (minutes)", default=0, tracking=True, help="How long OVH keeps trying; 0: OVH's default (48 h)."
    )
    ovh_price_countries = fields.Char(
        "Priced countries", tracking=True,
        help="ISO codes of the countries whose prices (credits per SMS) are read from OVH's rates, e.g. FR, BE; "
        "empty: the company's country.",
    )
    ovh_inbound_cursor = fields.Datetime(
        "Replies read until", readonly=True, copy=False,
        help="Date of the newest reply read from OVHcloud; the next poll reads from a little before it.",
    )
    ovh_polled_date = fields.Datetime("Last poll of OVHcloud", readonly=True, copy=False)

    @api.constrains("provider", "ovh_endpoint", "ovh_service_name", "ovh_validity")
    def _check_ovh(self):
        for gateway in self.filtered(lambda g: g.provider == "ovh"):
            endpoint = gateway.ovh_endpoint or ""
            if endpoint not in ENDPOINTS and not endpoint.startswith(("http://", "https://")):
                raise ValidationError(
                    _("Gateway %(name)s: the OVH endpoint is one of %(endpoints)s.",
                      name=gateway.name, endpoints=", ".join(ENDPOINTS))
                )
            if not gateway.ovh_service_name:
                raise ValidationError(_("Gateway %s needs the OVH SMS service name (sms-xx00000-1).", gateway.name))
            if gateway.ovh_validity < 0:
                raise ValidationError(_("The validity is a number of minutes, 0 for OVH's default."))
            if gateway.ovh_price_countries and not COUNTRY_LIST_RE.match(gateway.ovh_price_countries):
                raise ValidationError(_("Priced countries: two-letter ISO codes separated by commas, e.g. FR, BE."))

    def _ovh_price_country_codes(self):
        codes = re.findall(r"[A-Za-z]{2}", self.ovh_price_countries or "")
        if not codes and self.company_id.country_id:
            codes = [self.company_id.country_id.code]
        return sorted({code.upper() for code in codes})

    def _get_api(self):
        if self.provider != "ovh":
            return super()._get_api()
        gateway_sudo = self.sudo()
        return OvhClient(
            gateway_sudo.ovh_endpoint, gateway_sudo.ovh_application_key, gateway_sudo.ovh_application_secret,
            gateway_sudo.ovh_consumer_key, gateway_sudo.ovh_service_name,
            no_stop_clause=gateway_sudo.ovh_no_stop_clause, sender_for_response=gateway_sudo.ovh_sender_for_response,
            validity=gateway_sudo.ovh_validity, price_countries=gateway_sudo._ovh_price_country_codes(),
            timeout=self.timeout or 10,
        )

    def _get_capabilities(self):
        if self.provider != "ovh":
            return super()._get_capabilities()
        return OvhClient.CAPABILITIES

    def _endpoint_name(self):
        if self.provider != "ovh":
            return super()._endpoint_name()
        return _("OVHcloud (%s)", self.ovh_endpoint)

    def _error_message(self, error):
        if self.provider == "ovh" and isinstance(error, GatewayAccessError):
            return _(
                "OVHcloud refused the credentials of gateway %(name)s: check its application key, application "
                "secret and consumer key (and that the consumer key is validated and allows /sms). (%(detail)s)",
                name=self.name, detail=error.message,
            )
        return super()._error_message(error)

    def _ovh_counts_stop_mention(self, sender):
        """Whether OVH appends its STOP mention to messages of ``sender`` (an sms.sender) here."""
        self.ensure_one()
        return self.provider == "ovh" and not self.ovh_no_stop_clause and bool(sender) \
            and sender.sender_type == "alphanumeric"

    def _sms_appended_text(self, sender):
        if self.provider != "ovh":
            return super()._sms_appended_text(sender)
        return STOP_MENTION if self._ovh_counts_stop_mention(sender) else ""

    # ------------------------------------------------------------
    # SENDERS
    # ------------------------------------------------------------

    def action_ovh_sync_senders(self):
        """Import the OVH account's senders into sms.sender and move their states with the workflow
        actions (as OVH decided them)."""
        self.check_access_rights("write")
        for gateway in self.filtered(lambda g: g.provider == "ovh"):
            remote = gateway._call_api("senders")
            gateway._ovh_apply_senders(remote)
        return True

    def _ovh_apply_senders(self, remote):
        self.ensure_one()
        Sender = self.env["sms.sender"].sudo()
        existing = {s.name: s for s in Sender.with_context(active_test=False).search(
            [("company_id", "=", self.company_id.id)])}
        for item in remote:
            sender = existing.get(item["name"])
            if not sender:
                sender = Sender.create({
                    "name": item["name"], "company_id": self.company_id.id,
                    "sender_type": _guess_sender_type(item["name"]),
                    "description": item.get("description") or _("Imported from OVHcloud"),
                    "reason": _("Registered at OVHcloud"),
                })
            sender._sms_operator_decision(item["state"], item.get("comment") or "")

    def _ovh_submit_sender(self, sender):
        """Post ``sender`` (an sms.sender being submitted) to OVH's senders API, with its
        justification document; a sender OVH already has follows OVH's state at once."""
        self.ensure_one()
        sender_sudo = sender.sudo()
        document = base64.b64decode(sender_sudo.justification_document) if sender_sudo.justification_document else None
        try:
            with self._get_api() as api_client:
                state = api_client.request_sender(
                    sender.name, sender.description or "", sender.reason or "", document=document,
                    document_name=sender_sudo.justification_filename or None,
                )
                # OVH had it already and decided: its decision (and the moderator's comment) now.
                remote = [item for item in api_client.senders() if item["name"] == sender.name] \
                    if state != "submitted" else []
        except GatewayError as error:
            raise UserError(self._error_message(error)) from error
        if remote:
            self._ovh_apply_senders(remote)

    # ------------------------------------------------------------
    # POLL: RECEIPTS, REPLIES, SENDERS
    # ------------------------------------------------------------

    @api.model
    def _cron_ovh_poll(self, time_budget=None, now=None):
        """"SMS Marketing: poll OVHcloud": for each active OVH gateway, apply the receipts of its
        pending messages, look up the messages whose send answer was lost, apply the replies
        (STOP / START) and the new entries of OVH's own STOP blacklist, and follow the senders
        waiting for OVH's decision. Committed per gateway
        and step; a gateway that fails is logged and polled again next time.

        :return: ``{"delivered": n, "replies": n, "blacklisted": n}`` (final receipts, replies and
            entries of OVH's own STOP blacklist applied)
        """
        mailing_model = self.env["mailing.mailing"]
        if time_budget is None:
            time_budget = mailing_model._sms_cron_time_budget()
        deadline = time.monotonic() + time_budget
        now = now or fields.Datetime.now()
        counts = {"delivered": 0, "replies": 0, "blacklisted": 0}
        for gateway in self.sudo().search([("provider", "=", "ovh"), ("active", "=", True)]):
            if time.monotonic() >= deadline:
                break
            for step in gateway._ovh_poll_steps():
                try:
                    with self.env.cr.savepoint():
                        step(now, counts)
                except (GatewayError, UserError) as error:
                    _logger.warning("OVH gateway %s (%s): %s failed, next poll retries: %s",
                                    gateway.name, gateway.id, step.__name__, error)
                mailing_model._sms_commit()
            gateway.ovh_polled_date = now
            mailing_model._sms_commit()
        return counts

    def action_ovh_poll(self):
        """The poll of this gateway now (button), as the cron does it."""
        self.check_access_rights("write")
        self.check_access_rule("write")
        counts = {"delivered": 0, "replies": 0, "blacklisted": 0}
        now = fields.Datetime.now()
        for gateway in self.filtered(lambda g: g.provider == "ovh"):
            try:
                for step in gateway._ovh_poll_steps():
                    step(now, counts)
            except GatewayError as error:
                raise UserError(gateway._error_message(error)) from error
            gateway.sudo().ovh_polled_date = now
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {"title": _("OVHcloud"), "type": "success", "sticky": False,
                       "message": _("%(delivered)s delivery results, %(replies)s replies and %(blacklisted)s "
                                    "numbers of OVH's STOP blacklist applied.", **counts)},
        }

    def _ovh_poll_steps(self):
        """The poll of this gateway, step by step (each ``step(now, counts)``)."""
        return (self._ovh_poll_receipts, self._ovh_poll_lost_answers, self._ovh_poll_replies,
                self._ovh_poll_blacklist, self._ovh_poll_senders)

    def _ovh_poll_receipts(self, now, counts):
        """Final receipts of this gateway's pending messages, matched by the id OVH gave at send."""
        self.ensure_one()
        self.env["mailing.trace"].flush_model()
        self.env.cr.execute(SQL(
            """
            SELECT t.sms_provider_ref, t.sms_uuid, t.sent_datetime
              FROM mailing_trace t
              JOIN mailing_mailing m ON m.id = t.mass_mailing_id
             WHERE t.trace_type = 'sms' AND t.trace_status = 'pending' AND t.sms_uuid IS NOT NULL
               AND t.sms_provider_ref IS NOT NULL
               AND COALESCE(t.sms_gateway_id, m.sms_gateway_id) = %(gateway)s
             ORDER BY t.sent_datetime DESC, t.id DESC
             LIMIT %(limit)s
            """,
            gateway=self.id, limit=MAX_POLLED_TRACES,
        ))
        rows = self.env.cr.fetchall()
        if not rows:
            return
        since = min(row[2] or now for row in rows) - OUTGOING_MARGIN
        with self._get_api() as api_client:
            answers = api_client.delivery_results({ref: uuid for ref, uuid, _sent in rows}, since)
        Trace = self.env["mailing.trace"].sudo()
        for uuid, answer in answers.items():
            if Trace._sms_apply_delivery_report(uuid, answer["state"], answer["at"] or now, self):
                counts["delivered"] += 1
        if answers:
            _logger.info("OVH gateway %s: %s delivery results applied", self.id, len(answers))

    def _ovh_poll_lost_answers(self, now, counts):
        """Messages whose send answer was lost: asked to OVH by their tag (the settle cron's
        status step, sooner): found, they follow OVH; unknown to OVH, they failed unsent."""
        self.ensure_one()
        settled = {"queried": 0, "settled": 0}
        while not self._sms_settle_status_batch(now, settled, sent_before=now - POLL_LOST_ANSWER_AFTER,
                                                asked_before=now - POLL_LOST_ANSWER_EVERY, unknown_only=True):
            pass
        counts["delivered"] += settled["settled"]

    def _ovh_poll_replies(self, now, counts):
        """Replies received by OVH since the last one read (minus an overlap: a reply is applied
        once, by its OVH id), through the consent code every gateway uses."""
        self.ensure_one()
        since = self.ovh_inbound_cursor - INBOUND_OVERLAP if self.ovh_inbound_cursor else None
        with self._get_api() as api_client:
            replies = api_client.incoming(since)
        Event = self.env["sms.consent.event"].sudo()
        newest = self.ovh_inbound_cursor
        for reply in replies:
            payload, _status = Event._sms_apply_reply(self, reply)
            if payload.get("action"):
                counts["replies"] += 1
            newest = max(newest or reply["at"], reply["at"])
        if newest and newest != self.ovh_inbound_cursor:
            self.sudo().ovh_inbound_cursor = newest

    def _ovh_poll_blacklist(self, now, counts):
        """OVH's own STOP blacklist of this gateway's service (people who answered OVH's STOP
        mention to its short number, which never reaches our replies): each new entry becomes an
        opt-out of the number, dated when OVH recorded it, through the consent code of replies (an
        entry is applied once, by its number and date; one dated before the person's later START is
        not). Numbers already on our blacklist cost no call."""
        self.ensure_one()
        with self._get_api() as api_client:
            numbers = api_client.blacklisted_numbers()
            normalized = {number: normalize_sender_number(number) for number in numbers}
            self.env["phone.blacklist"].flush_model()
            self.env.cr.execute(SQL(
                "SELECT number FROM phone_blacklist WHERE active AND number = ANY(%s)",
                [number for number in normalized.values() if number],
            ))
            ours = {row[0] for row in self.env.cr.fetchall()}
            entries = api_client.blacklist_entries([number for number in numbers if normalized[number] not in ours])
        Event = self.env["sms.consent.event"].sudo()
        for entry in entries:
            payload, _status = Event._sms_apply_reply(self, {
                "from": entry["number"], "to": STOP_NUMBER, "body": "STOP", "keyword": STOP, "at": entry["at"],
                "message_id": entry["message_id"],
            })
            if payload.get("action"):
                counts["blacklisted"] += 1

    def _ovh_poll_senders(self, now, counts):
        """Senders of the company waiting for OVH's decision follow it (as Sync senders does)."""
        self.ensure_one()
        waiting = self.env["sms.sender"].sudo().search_count(
            [("company_id", "=", self.company_id.id), ("state", "=", "submitted")], limit=1)
        if waiting:
            with self._get_api() as api_client:
                remote = api_client.senders()
            self._ovh_apply_senders(remote)


def _guess_sender_type(name):
    digits = name.lstrip("+")
    if digits.isdigit():
        return "virtual_number" if len(digits) > 8 else "short_number"
    return "alphanumeric"

