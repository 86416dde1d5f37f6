from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools.providers.base import GatewayAccessError, GatewayError
from ..tools.providers.ovh import ENDPOINTS, OvhClient

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"


class SmsGatewayOvh(models.Model):
    """Provider ``ovh``: OVHcloud SMS through OVH's signed REST API (the official ``ovh`` client).
    Balance from the service's ``creditsLeft``; senders synced from and requested to OVH. OVH has
    no idempotency key: a message whose send answer was lost waits as outcome unknown."""

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

    def _get_api(self):
        if self.provider != "ovh":
            return super()._get_api()
        gateway_sudo = self.sudo()
        return OvhClient(
            gateway_sudo.ovh_endpoint, gateway_sudo.ovh_application_key, gateway_sudo.ovh_application_secret,
            gateway_sudo.ovh_consumer_key, gateway_sudo.ovh_service_name,
            no_stop_clause=gateway_sudo.ovh_no_stop_clause, sender_for_response=gateway_sudo.ovh_sender_for_response,
            validity=gateway_sudo.ovh_validity, timeout=self.timeout or 10,
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
        """Post ``sender`` (an sms.sender being submitted) to OVH's senders API."""
        self.ensure_one()
        try:
            with self._get_api() as api_client:
                api_client.request_sender(sender.name, sender.description or "", sender.reason or "")
        except GatewayError as error:
            raise UserError(self._error_message(error)) from error


def _guess_sender_type(name):
    digits = name.lstrip("+")
    if digits.isdigit():
        return "virtual_number" if len(digits) > 8 else "short_number"
    return "alphanumeric"

