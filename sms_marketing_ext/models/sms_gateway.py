import logging
import secrets
import urllib.parse

import psycopg2

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..tools.providers.base import (
    MAX_BATCH,
    Capabilities,
    GatewayAccessError,
    GatewayConfigurationError,
    GatewayError,
    GatewayInsufficientCreditError,
    GatewayTransientError,
)

_logger = logging.getLogger(__name__)

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"
WEBHOOK_KINDS = ("status", "inbound")


def _credits(amount):
    """Credits as the user reads them: 99.85, not 99.85000000000001."""
    text = f"{amount or 0.0:,.2f}"
    return text[:-3] if text.endswith(".00") else text.rstrip("0")


def _new_webhook_secret():
    return secrets.token_hex(32)


class SmsGateway(models.Model):
    """Where a company's SMS go, through one provider. Each provider's Odoo side lives in
    ``models/sms_gateway_<code>.py`` (its selection value, fields, :meth:`_get_api` and
    :meth:`_get_capabilities`), its pure client in ``tools/providers/<code>.py``."""

    _name = "sms.gateway"
    _description = "SMS Gateway"
    _inherit = ["mail.thread", "sms.company.default.mixin"]
    _order = "company_id, is_default desc, name, id"

    name = fields.Char(required=True, tracking=True)
    provider = fields.Selection(
        [],
        required=True,
        default="jsonrpc",
        tracking=True,
        help="The operator or gateway the SMS go through; each one's settings appear once it is chosen.",
    )
    base_url = fields.Char(
        "Base URL", tracking=True, help="The API lives under <base URL>/api/sms/1/, e.g. https://sms.example.com."
    )
    webhook_secret = fields.Char(
        copy=False,
        groups=ADMIN_GROUP,
        default=lambda self: _new_webhook_secret(),
        help="Shared with the gateway: it signs delivery reports and inbound messages with it "
        "(X-SMS-Signature header), or, for gateways that cannot sign, it is part of the callback URLs; "
        "callbacks without it are refused.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, tracking=True, index=True
    )
    is_default = fields.Boolean(
        "Default", copy=False, tracking=True, help="The gateway SMS mailings of this company go through."
    )
    batch_size = fields.Integer(
        default=MAX_BATCH, tracking=True, help=f"Messages per send call, 1 to {MAX_BATCH}."
    )
    throughput = fields.Integer(
        default=0, tracking=True, help="Messages per second at most; 0 means unlimited."
    )
    timeout = fields.Integer("Timeout (s)", default=10, tracking=True, help="Seconds to wait for each call's answer.")
    max_attempts = fields.Integer(
        "Max attempts",
        default=8,
        tracking=True,
        help="Send attempts of one message (network failures, server errors) before it is given up.",
    )
    active = fields.Boolean(default=True, tracking=True)
    balance = fields.Float(
        digits=(16, 4),
        help="Credits on the account at the last refresh. For a provider without a balance API, the credit "
        "budget: set it by hand; each message sent takes its local price off it.",
    )
    balance_date = fields.Datetime("Balance refreshed on", readonly=True)
    price_default = fields.Float(
        "Default price", digits=(16, 4), help="Credits per SMS part for countries without a price."
    )
    price_ids = fields.One2many("sms.gateway.price", "gateway_id", "Country prices")
    # What the provider can do (the capability table of the form and of the README).
    cap_balance = fields.Boolean("Balance API", compute="_compute_capabilities")
    cap_prices = fields.Boolean("Price API", compute="_compute_capabilities")
    cap_idempotent_send = fields.Boolean(
        "Idempotent send", compute="_compute_capabilities",
        help="A send whose answer was lost can be repeated without sending twice. Without it, such a message "
        "waits as outcome unknown until its delivery report settles it, and is never sent again blindly.",
    )
    cap_delivery_reports = fields.Boolean("Delivery reports", compute="_compute_capabilities")
    cap_status_query = fields.Boolean("Status query", compute="_compute_capabilities")
    cap_inbound = fields.Boolean("Inbound (STOP)", compute="_compute_capabilities")
    cap_sender_sync = fields.Boolean("Sender sync", compute="_compute_capabilities")
    cap_message_classes = fields.Boolean("Message classes", compute="_compute_capabilities")
    cap_scheduling = fields.Boolean("Scheduling", compute="_compute_capabilities")
    status_webhook_url = fields.Char("Delivery report URL", compute="_compute_webhook_urls")
    inbound_webhook_url = fields.Char("Inbound message URL", compute="_compute_webhook_urls")
    webhook_urls_note = fields.Text("About these URLs", compute="_compute_webhook_urls")
    webhook_base_url_local = fields.Boolean("Callbacks unreachable", compute="_compute_webhook_urls")

    @api.depends("provider")
    def _compute_capabilities(self):
        for gateway in self:
            capabilities = gateway._get_capabilities()
            for name in Capabilities._fields:
                gateway[f"cap_{name}"] = getattr(capabilities, name)

    @api.depends("provider")
    def _compute_webhook_urls(self):
        for gateway in self:
            urls = {entry["kind"]: entry for entry in gateway._get_webhook_urls() if not entry.get("secret")}
            gateway.status_webhook_url = urls.get("status", {}).get("url", False)
            gateway.inbound_webhook_url = urls.get("inbound", {}).get("url", False)
            notes = [entry["note"] for entry in urls.values() if entry.get("note")]
            gateway.webhook_urls_note = "\n".join(notes) or False
            # From the URLs themselves: a provider may build them on another base than web.base.url.
            hosts = {(urllib.parse.urlsplit(entry["url"]).hostname or "").lower() for entry in urls.values()}
            gateway.webhook_base_url_local = any(
                host in ("", "localhost", "0.0.0.0") or host.startswith("127.") or host == "::1"  # noqa: S104
                for host in hosts
            )

    def _get_webhook_urls(self):
        """The URLs this gateway's provider must be given (or is given by us) to call Odoo back,
        shown read-only with a copy button on the gateway form.

        Each provider's file extends it for its own code and returns a list of dicts:

        * ``kind``: ``"status"`` (delivery reports) or ``"inbound"`` (replies such as STOP);
          the form shows them in the *Delivery report URL* and *Inbound message URL* fields;
        * ``label``: what it is, in the user's words;
        * ``url``: the absolute URL, from ``web.base.url``;
        * ``note`` (optional): where to paste it, or that nothing is to be done;
        * ``secret`` (optional, default False): the URL carries a secret (providers that cannot
          sign their calls): it is left out of the generic fields, seen by every user of the
          form, and the provider shows it in a field of its own restricted to SMS administrators.

        A new record (no id yet) has no URL: the routes name the gateway by id.
        """
        self.ensure_one()
        return []

    # ------------------------------------------------------------
    # CONSTRAINTS AND ORM
    # ------------------------------------------------------------

    @api.constrains("batch_size")
    def _check_batch_size(self):
        for gateway in self:
            if not 1 <= gateway.batch_size <= MAX_BATCH:
                raise ValidationError(
                    _(
                        "The batch size of gateway %(gateway)s must be between 1 and %(max)s messages per call "
                        "(the protocol's limit), not %(size)s.",
                        gateway=gateway.name,
                        max=MAX_BATCH,
                        size=gateway.batch_size,
                    )
                )

    @api.constrains("throughput", "timeout", "max_attempts")
    def _check_limits(self):
        for gateway in self:
            if gateway.throughput < 0:
                raise ValidationError(_("The throughput is a number of messages per second, 0 for unlimited."))
            if gateway.timeout < 1:
                raise ValidationError(_("The timeout is at least 1 second."))
            if gateway.max_attempts < 1:
                raise ValidationError(_("A message is attempted at least once (max attempts >= 1)."))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("base_url"):
                vals["base_url"] = vals["base_url"].strip().rstrip("/")
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("base_url"):
            vals = dict(vals, base_url=vals["base_url"].strip().rstrip("/"))
        return super().write(vals)

    # ------------------------------------------------------------
    # TOOLS
    # ------------------------------------------------------------

    @api.model
    def _get_default_gateway(self, company=None):
        """The default active gateway of ``company`` (the current one by default); when none is
        flagged default, its first active gateway; else an empty recordset."""
        company = company or self.env.company
        return self.search([("company_id", "=", company.id)], order="is_default desc, id", limit=1)

    def _get_api(self):
        """The provider's client (a :class:`~..tools.providers.base.SmsProvider`), built from this
        record; each provider's file overrides it for its own code."""
        self.ensure_one()
        raise GatewayConfigurationError(message=f"no client for provider {self.provider!r}")

    def _get_capabilities(self):
        """What the provider can do (:class:`~..tools.providers.base.Capabilities`); each provider's
        file overrides it for its own code."""
        self.ensure_one()
        return Capabilities()

    def _sms_appended_text(self, sender):
        """What the provider adds to every message sent from ``sender`` (an sms.sender, maybe
        empty) through this gateway, such as OVHcloud's STOP mention: counted in the length, the
        parts and the cost, never in the text we send. Providers extend it; none by default."""
        self.ensure_one()
        return ""

    def _endpoint_name(self):
        """How to name where this gateway's calls go, in messages to the user."""
        self.ensure_one()
        return dict(self._fields["provider"]._description_selection(self.env)).get(self.provider, self.provider)

    def _spend_budget(self, amount):
        """Take ``amount`` credits off the budget of a gateway whose provider has no balance API
        (one atomic UPDATE: concurrent batches each take their share)."""
        self.ensure_one()
        if amount and not self._get_capabilities().balance:
            self.env.cr.execute(
                SQL("UPDATE sms_gateway SET balance = balance - %s WHERE id = %s", amount, self.id)
            )
            self.invalidate_recordset(["balance"])

    def _webhook_url(self, kind):
        """Public URL where the gateway posts callbacks of ``kind`` ('status' or 'inbound')."""
        self.ensure_one()
        if kind not in WEBHOOK_KINDS:
            raise ValueError(f"unknown webhook kind {kind!r}")
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        return f"{base_url}/sms_marketing_ext/webhook/{self.id}/{kind}"

    def _report_url(self):
        """Where the provider is told to send the delivery reports of the messages we send."""
        self.ensure_one()
        return self._webhook_url("status")

    def _price_for(self, country_code):
        """Credits per SMS part to ``country_code`` (ISO alpha-2): the country's price, else the default."""
        self.ensure_one()
        return self._price_table().get((country_code or "").upper(), self.price_default)

    def _price_table(self):
        """``{country code: credits per part}``; callers pricing many messages use it once per batch."""
        self.ensure_one()
        return {line.country_code: line.price for line in self.price_ids}

    def _error_message(self, error):
        """Say what went wrong with a gateway call in the user's terms."""
        self.ensure_one()
        where = self._endpoint_name()
        if isinstance(error, GatewayAccessError):
            return _(
                "%(gateway)s refused the account token: check the token of gateway %(name)s at the gateway.",
                gateway=where,
                name=self.name,
            )
        if isinstance(error, GatewayInsufficientCreditError):
            return _("The account of gateway %s has not enough credits.", self.name)
        if isinstance(error, GatewayConfigurationError):
            return _("Gateway %(name)s is not fully configured: %(detail)s", name=self.name, detail=error.message)
        if isinstance(error, GatewayTransientError):
            if error.reason == "timeout":
                return _(
                    "%(gateway)s did not answer within %(timeout)s seconds: try again later, "
                    "or raise the gateway's timeout.",
                    gateway=where,
                    timeout=self.timeout,
                )
            if error.reason == "http":
                return _(
                    "%(gateway)s is temporarily unavailable (HTTP %(status)s): try again later.",
                    gateway=where,
                    status=error.status_code,
                )
            return _(
                "Cannot reach %(gateway)s: check the base URL and that the gateway is running. (%(detail)s)",
                gateway=where,
                detail=error.message,
            )
        if isinstance(error, GatewayError):
            return _("%(gateway)s answered an error: %(detail)s", gateway=where, detail=error.message)
        return str(error)

    def _call_api(self, method_name, *args, **kwargs):
        """Call ``method_name`` on the gateway's client; raise a UserError in the user's terms."""
        self.ensure_one()
        try:
            with self._get_api() as api_client:
                return getattr(api_client, method_name)(*args, **kwargs)
        except GatewayError as error:
            _logger.info("SMS gateway %s (%s): %s failed: %s", self.name, self.id, method_name, error)
            raise UserError(self._error_message(error)) from error

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_test_connection(self):
        self.ensure_one()
        self.check_access_rights("write")
        balance = self._call_api("check_connection")
        if balance is None:
            message = _("Gateway %(name)s accepted the credentials.", name=self.name)
        else:
            message = _("Gateway %(name)s answered: %(credits)s credits available.", name=self.name,
                        credits=_credits(balance))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Connection successful"),
                "message": message,
                "type": "success",
                "sticky": False,
            },
        }

    def action_refresh_balance(self):
        """Refresh balance and prices: stores the balance, its date, the default price and the country prices."""
        self.check_access_rights("write")
        messages = []
        for gateway in self:
            try:
                gateway._refresh_from_gateway()
            except GatewayError as error:
                raise UserError(gateway._error_message(error)) from error
            messages.append(gateway._refresh_summary())
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Balance and prices"),
                "message": "\n".join(messages),
                "type": "success",
                "sticky": False,
                "next": {"type": "ir.actions.act_window_close"},  # the form reloads the record
            },
        }

    def _refresh_summary(self):
        """What Refresh balance and prices did, in a sentence for the user."""
        self.ensure_one()
        capabilities = self._get_capabilities()
        if not (capabilities.balance or capabilities.prices):
            return _("Gateway %(name)s publishes neither balance nor prices: its credit budget (%(credits)s) and "
                     "the prices you enter are used.", name=self.name, credits=_credits(self.balance))
        parts = []
        if capabilities.balance:
            parts.append(_("%(credits)s credits available", credits=_credits(self.balance)))
        if capabilities.prices:
            parts.append(_("%(default)s per SMS part by default, %(count)s country prices",
                           default=self.price_default, count=len(self.price_ids)))
        else:
            parts.append(_("no price list: the prices you enter are used"))
        return _("Gateway %(name)s: %(details)s.", name=self.name, details=", ".join(parts))

    def _refresh_from_gateway(self):
        """Fetch the balance and the price list from the gateway and store them (the price lines
        only when they changed). Gateway errors propagate. Returns the balance.

        A provider without a balance API has its credit budget instead (the ``balance`` field, set
        by hand), one without a price API the local prices of this record: neither is fetched."""
        self.ensure_one()
        capabilities = self._get_capabilities()
        if not (capabilities.balance or capabilities.prices):
            return self.balance
        with self._get_api() as api_client:
            balance = api_client.balance() if capabilities.balance else self.balance
            prices = api_client.prices() if capabilities.prices else None
        vals = {"balance_date": fields.Datetime.now()} if capabilities.balance else {}
        if capabilities.balance:
            vals["balance"] = balance
        if prices is not None and prices["default"] != self.price_default:
            vals["price_default"] = prices["default"]
        if prices is not None and prices["countries"] != self._price_table():
            vals["price_ids"] = [fields.Command.clear()] + [
                fields.Command.create({"country_code": code, "price": price})
                for code, price in sorted(prices["countries"].items())
            ]
        # Only a cache of the gateway's state: when another worker is storing it at the same time,
        # skip (its values are as fresh) rather than fail the batch with a serialization error, or
        # with the unique price per country when both created the same price lines.
        try:
            with self.env.cr.savepoint():
                # The gateway's row first: a worker storing it at this moment holds it, one that
                # stored it since this transaction began changed it (serialization failure). Not
                # logged as a bad query: both are expected when several workers send.
                self.env.cr.execute(
                    SQL("SELECT id FROM %s WHERE id = %s FOR NO KEY UPDATE NOWAIT", SQL.identifier(self._table),
                        self.id),
                    log_exceptions=False,
                )
                self.sudo().write(vals)
                self.flush_recordset()
                self.price_ids.flush_recordset()
        except (psycopg2.errors.SerializationFailure, psycopg2.errors.LockNotAvailable,
                psycopg2.errors.UniqueViolation):
            _logger.info("SMS gateway %s: balance stored by another worker meanwhile", self.id)
            self.invalidate_recordset()
            self.price_ids.invalidate_recordset()
        return balance

    def action_regenerate_webhook_secret(self):
        self.check_access_rights("write")
        for gateway in self:
            gateway.webhook_secret = _new_webhook_secret()
            gateway.message_post(
                body=_("Webhook secret regenerated: copy the new one to the gateway, or its callbacks are refused."),
            )
        return True
