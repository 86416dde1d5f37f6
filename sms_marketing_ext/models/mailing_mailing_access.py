from odoo import _, api, models
from odoo.exceptions import AccessError, UserError

SMS_USER_GROUP = "sms_marketing_ext.group_sms_marketing_user"
# Written by a user, these decide where and as whom an SMS mailing goes: checked after the write.
SMS_ROUTING_FIELDS = frozenset({"company_id", "sms_gateway_id", "sms_sender_id", "mailing_type"})
SMS_QUEUED_STATES = ("in_queue", "sending")


class MailingMailingAccess(models.Model):
    """Who may send an SMS mailing where: a user's create or write is checked against their
    companies and rights on gateway and sender, the delivery error checked before every batch,
    and which mailings stock's pipeline keeps (a company without a gateway of ours)."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        mailings = super().create(vals_list)
        if not self.env.su:
            mailings._sms_check_user_routing()
        return mailings

    def write(self, vals):
        res = super().write(vals)
        if not self.env.su and (SMS_ROUTING_FIELDS & vals.keys() or vals.get("state") in SMS_QUEUED_STATES):
            self._sms_check_user_routing()
        return res

    def _sms_check_user_routing(self):
        """The current user may have these SMS mailings go where they are set to go (checked
        after a user's create or write, on the values it produced): only through one of their
        own companies (its gateway and sender belong to it: ``check_company``); and unless they
        are an SMS Marketing user, only through the company's default gateway and sender, as
        stock's flow does: stock's Mass Mailing users send, they do not choose."""
        user = self.env.user
        may_choose = user.has_group(SMS_USER_GROUP)
        for mailing in self.filtered(lambda m: m.mailing_type == "sms"):
            company = mailing.company_id or self.env.company
            if company not in user.company_ids:
                raise AccessError(
                    _("%(company)s is not one of your companies: you cannot send SMS mailings of it (%(mailing)s).",
                      company=company.name, mailing=mailing.subject)
                )
            if may_choose:
                continue
            gateway, sender = mailing.sudo().sms_gateway_id, mailing.sudo().sms_sender_id
            default_gateway = self.env["sms.gateway"].sudo()._get_default_gateway(company)
            default_sender = self.env["sms.sender"].sudo()._get_default_sender(company)
            if gateway and gateway != default_gateway:
                raise AccessError(
                    _("Only SMS Marketing users choose the gateway: %(mailing)s goes through %(default)s, the "
                      "default gateway of %(company)s, not %(gateway)s.", mailing=mailing.subject,
                      default=default_gateway.name, company=company.name, gateway=gateway.name)
                )
            if sender and sender != default_sender:
                raise AccessError(
                    _("Only SMS Marketing users choose the sender: %(mailing)s is sent as %(default)s, the "
                      "default sender of %(company)s, not %(sender)s.", mailing=mailing.subject,
                      default=default_sender.name or _("the gateway's default sender"), company=company.name,
                      sender=sender.name)
                )

    # ------------------------------------------------------------
    # PIPELINE, GATEWAY, SENDABLE
    # ------------------------------------------------------------

    def _sms_uses_stock_pipeline(self):
        """True for an SMS mailing of a company that has no gateway of ours: it is sent by stock's
        pipeline (sms.sms through Odoo IAP) exactly as before the addon was installed, so that a
        drop-in breaks nothing until an administrator configures a gateway."""
        self.ensure_one()
        return self.mailing_type == "sms" and not (
            self.sms_gateway_id or self.env["sms.gateway"].sudo()._get_default_gateway(self.company_id)
        )

    @api.model
    def _sms_own_pipeline_domain(self):
        """The SMS mailings that our send cron sends (the complement of the stock pipeline)."""
        gateways = self.env["sms.gateway"].sudo()._read_group([], ["company_id"])
        companies = [company.id for (company,) in gateways]
        return [
            ("mailing_type", "=", "sms"),
            "|", ("sms_gateway_id", "!=", False), ("company_id", "in", companies),
        ]

    def _sms_get_gateway(self):
        self.ensure_one()
        gateway = self.sms_gateway_id or self.env["sms.gateway"]._get_default_gateway(self.company_id)
        if not gateway:
            raise UserError(
                _("No SMS gateway for %s: configure one in SMS Marketing > Configuration > Gateways.",
                  (self.company_id or self.env.company).name)
            )
        return gateway

    def _sms_authors(self):
        """The users in whose name an SMS mailing is sent: its responsible and its creator. The
        responsible can be changed, the creator cannot: both hold, so naming a responsible with
        wider rights lends none. The superuser (data files, code) is no one's author."""
        self.ensure_one()
        mailing = self.sudo()
        return (mailing.user_id | mailing.create_uid).filtered(lambda user: not user._is_superuser())

    def _sms_delivery_error(self):
        """Why this SMS mailing may not reach its gateway now, in the user's terms, else None: its
        gateway and sender belong to its company, the sender is approved, and each of its authors
        may use that company. Checked at the test send, when the send starts and before every
        batch: the send cron runs as superuser, and any of these may change while a mailing waits."""
        self.ensure_one()
        mailing = self.sudo()
        company = mailing.company_id
        if not company:
            return _("%s has no company: set the company whose gateway and sender it uses.", mailing.subject)
        gateway = mailing.sms_gateway_id or mailing.env["sms.gateway"]._get_default_gateway(company)
        if gateway and gateway.company_id != company:
            return _(
                "The gateway %(gateway)s belongs to %(other)s, not to %(company)s, the company of %(mailing)s.",
                gateway=gateway.name, other=gateway.company_id.name, company=company.name, mailing=mailing.subject,
            )
        sender = mailing.sms_sender_id
        if sender and sender.company_id != company:
            return _(
                "The sender %(sender)s belongs to another company than the mailing %(mailing)s (%(other)s, not "
                "%(company)s).",
                sender=sender.name, mailing=mailing.subject, other=sender.company_id.name, company=company.name,
            )
        if sender and sender.state != "approved":
            return _(
                "The sender %(sender)s of %(mailing)s is not approved (%(state)s): only approved senders can send.",
                sender=sender.name,
                mailing=mailing.subject,
                state=dict(sender._fields["state"]._description_selection(self.env))[sender.state],
            )
        for author in mailing._sms_authors():
            if company not in author.company_ids:
                return _(
                    "%(user)s, responsible for or creator of %(mailing)s, has no access to %(company)s: its "
                    "gateway and senders cannot be used in their name.",
                    user=author.name, mailing=mailing.subject, company=company.name,
                )
        return None

    def _sms_check_sendable(self):
        """Raise a UserError in the user's terms when an SMS mailing cannot be sent or scheduled."""
        for mailing in self.filtered(lambda m: m.mailing_type == "sms"):
            sender = mailing.sms_sender_id
            error = mailing._sms_delivery_error()
            if error:
                raise UserError(error)
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
