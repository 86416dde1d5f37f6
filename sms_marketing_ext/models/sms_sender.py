from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..tools import sms_sender as sender_tools

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"
# Set by the workflow actions only (Submit, Approve, Refuse, Reset to draft), never by a write.
WORKFLOW_FIELDS = frozenset({"state", "decided_by_id", "decided_on"})
# What the operator registered: fixed once the sender is submitted or approved.
LOCKED_FIELDS = frozenset({"name", "sender_type", "company_id", "justification_document", "justification_filename"})


class SmsSender(models.Model):
    """The identity an SMS comes from, as operators register it: requested by a marketer with
    a description, a reason and a justification document, approved or refused by an SMS
    administrator. Only approved senders can send."""

    _name = "sms.sender"
    _description = "SMS Sender"
    _inherit = ["mail.thread", "mail.activity.mixin", "sms.company.default.mixin"]
    _order = "company_id, is_default desc, name, id"
    _rec_names_search = ["name", "description"]

    name = fields.Char(
        "Sender",
        compute="_compute_name",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
        tracking=True,
        help="What recipients see as the sender on their phone.",
    )
    sender_type = fields.Selection(
        [
            (sender_tools.ALPHANUMERIC, "Alphanumeric ID"),
            (sender_tools.SHORT_NUMBER, "Short number"),
            (sender_tools.VIRTUAL_NUMBER, "Virtual mobile number"),
        ],
        "Type",
        required=True,
        default=sender_tools.ALPHANUMERIC,
        tracking=True,
        help="Alphanumeric ID: up to 11 letters, digits and spaces; recipients cannot reply.\n"
        "Short number: 3 to 8 digits; recipients can reply.\n"
        "Virtual mobile number: a mobile number in international format; recipients can reply.",
    )
    description = fields.Text(tracking=True)
    reason = fields.Text(
        "Reason for use",
        tracking=True,
        help="Why this sender is used: the operator's registration asks for it.",
    )
    justification_document = fields.Binary(
        "Justification document",
        attachment=True,
        copy=False,
        help="Company or brand letterhead with a signed and stamped authorisation, an ID card, or a "
        "trade register extract for unregistered brands. Needed to submit an alphanumeric sender.",
    )
    justification_filename = fields.Char(copy=False)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, tracking=True, index=True
    )
    is_default = fields.Boolean(
        "Default",
        tracking=True,
        copy=False,
        help="Proposed on new SMS mailings of this company once approved.",
    )
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("submitted", "Submitted"),
            ("approved", "Approved"),
            ("refused", "Refused"),
        ],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
        index=True,
        group_expand="_group_expand_states",
    )
    refusal_reason = fields.Text(tracking=True, copy=False)
    accepts_replies = fields.Boolean(
        compute="_compute_accepts_replies",
        store=True,
        help="Short and virtual numbers receive replies (such as STOP); alphanumeric IDs cannot.",
    )
    decided_by_id = fields.Many2one("res.users", "Decided by", readonly=True, copy=False)
    decided_on = fields.Datetime("Decided on", readonly=True, copy=False)
    active = fields.Boolean(default=True, tracking=True)

    _sql_constraints = [
        (
            "name_company_uniq",
            "unique(name, sender_type, company_id)",
            "This sender already exists for this company.",
        ),
    ]

    @api.depends("company_id", "sender_type")
    def _compute_name(self):
        """A new alphanumeric sender starts with the name "Suggest from company" gives: never empty,
        so that the button (which saves first) also works before anything is typed."""
        for sender in self:
            if not sender.name and sender.sender_type == sender_tools.ALPHANUMERIC and sender.company_id:
                sender.name = sender_tools.suggest_alphanumeric_sender(sender.company_id.name) or False

    @api.model
    def _group_expand_states(self, states, domain, order):
        """Every state is a column of the kanban, Draft included, in the workflow's order."""
        return [key for key, _label in self._fields["state"].selection]

    @api.depends("sender_type")
    def _compute_accepts_replies(self):
        for sender in self:
            sender.accepts_replies = sender.sender_type in (sender_tools.SHORT_NUMBER, sender_tools.VIRTUAL_NUMBER)

    @api.depends("name", "sender_type")
    def _compute_display_name(self):
        labels = dict(self._fields["sender_type"]._description_selection(self.env))
        for sender in self:
            sender.display_name = f"{sender.name} ({labels.get(sender.sender_type, '')})" if sender.name else ""

    @api.constrains("name", "sender_type")
    def _check_name(self):
        for sender in self:
            error = sender_tools.sender_name_error(sender.sender_type, sender.name)
            if error:
                raise ValidationError(sender._name_rule_message(error))

    def _name_rule_message(self, code):
        """The user's wording of ``code``, the sender-name rule this sender breaks (tools/sms_sender.py)."""
        self.ensure_one()
        name = self.name or ""
        if code == sender_tools.ALPHANUMERIC_CHARACTERS:
            return _(
                "An alphanumeric sender has 1 to %(max_length)s characters, only letters A-Z without accents, "
                "digits and spaces: '%(name)s' does not qualify.",
                max_length=sender_tools.ALPHANUMERIC_MAX_LENGTH,
                name=name,
            )
        if code == sender_tools.ALPHANUMERIC_NO_LETTER:
            return _(
                "An alphanumeric sender needs at least one letter: '%(name)s' would read as a phone number.", name=name
            )
        if code == sender_tools.ALPHANUMERIC_EDGE_SPACE:
            return _("An alphanumeric sender cannot start or end with a space: '%(name)s'.", name=name)
        if code == sender_tools.SHORT_NUMBER_DIGITS:
            return _("A short number has 3 to 8 digits and nothing else: '%(name)s' does not qualify.", name=name)
        if code == sender_tools.VIRTUAL_NUMBER_NOT_MOBILE:
            return _(
                "A virtual number must be a valid mobile number in international format, such as +33612345678: "
                "'%(name)s' is not.",
                name=name,
            )
        return _("Unknown sender type '%(sender_type)s'.", sender_type=self.sender_type)

    @api.constrains("is_default", "state")
    def _check_default_approved(self):
        for sender in self.filtered(lambda s: s.is_default and s.state != "approved"):
            raise ValidationError(sender._default_not_approved_message())

    def _default_not_approved_message(self):
        self.ensure_one()
        return _(
            "Only an approved sender can be the default sender of its company: %(sender)s is %(state)s.",
            sender=self.name,
            state=dict(self._fields["state"]._description_selection(self.env))[self.state],
        )

    @api.constrains("is_default", "company_id", "active")
    def _check_single_default(self):
        for sender in self.filtered(lambda s: s.is_default and s.active):
            others = self.search_count(
                [("company_id", "=", sender.company_id.id), ("is_default", "=", True), ("id", "!=", sender.id)]
            )
            if others:
                raise ValidationError(_("A company has one default sender at most."))

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_vals(vals)
            if not self.env.su and (vals.get("state", "draft") != "draft" or vals.get("decided_by_id")
                                    or vals.get("decided_on")):
                raise AccessError(_("A sender is requested as a draft, then submitted and approved or refused."))
            if vals.get("is_default") and vals.get("state", "draft") != "approved":
                raise ValidationError(
                    _("Only an approved sender can be the default sender of its company: %s is not approved.",
                      vals.get("name"))
                )
        return super().create(vals_list)

    def write(self, vals):
        vals = self._normalize_vals(dict(vals), records=self)
        if not self.env.su:
            if WORKFLOW_FIELDS & vals.keys():
                raise AccessError(
                    _("The state of a sender and its decision change only through Submit, Approve, Refuse and "
                      "Reset to draft.")
                )
            locked = self.filtered(lambda s: s.state in ("submitted", "approved"))
            if locked and LOCKED_FIELDS & vals.keys():
                raise UserError(
                    _(
                        "%(senders)s is already submitted or approved: its name, type, company and justification "
                        "document cannot change. Request a new sender instead.",
                        senders=", ".join(locked.mapped("name")),
                    )
                )
        if vals.get("is_default") and "state" not in vals:
            # Before the other defaults of the company are unflagged (sms.company.default.mixin).
            for sender in self.filtered(lambda s: s.state != "approved"):
                raise ValidationError(sender._default_not_approved_message())
        return super().write(vals)

    def _normalize_vals(self, vals, records=None):
        """Virtual numbers are stored in E.164; alphanumeric ids without surrounding spaces."""
        if "name" not in vals or not vals["name"]:
            return vals
        types = {vals["sender_type"]} if vals.get("sender_type") else set((records or self).mapped("sender_type"))
        if not types and records is None:
            types = {self._fields["sender_type"].default(self)}
        if types == {sender_tools.VIRTUAL_NUMBER}:
            vals["name"] = sender_tools.normalize_virtual_number(vals["name"]) or vals["name"]
        elif types == {sender_tools.ALPHANUMERIC}:
            vals["name"] = vals["name"].strip()
        elif types == {sender_tools.SHORT_NUMBER}:
            vals["name"] = vals["name"].replace(" ", "")
        return vals

    @api.ondelete(at_uninstall=False)
    def _unlink_except_used(self):
        used = self.env["mailing.mailing"].sudo().search_count([("sms_sender_id", "in", self.ids)], limit=1)
        if used:
            raise UserError(_("A sender used by mailings cannot be deleted: archive it instead."))

    # ------------------------------------------------------------
    # WORKFLOW
    # ------------------------------------------------------------

    def _check_can_decide(self):
        if not (self.env.su or self.env.user.has_group(ADMIN_GROUP)):
            raise AccessError(_("Only SMS administrators can approve or refuse senders."))

    def action_submit(self):
        for sender in self:
            if sender.state not in ("draft", "refused"):
                raise UserError(_("Only draft or refused senders can be submitted (%s).", sender.name))
            if sender.sender_type == sender_tools.ALPHANUMERIC and not sender.justification_document:
                raise UserError(
                    _(
                        "Attach a justification document before submitting the alphanumeric sender %s: "
                        "a letterhead with a signed and stamped authorisation, an ID card or a trade "
                        "register extract.",
                        sender.name,
                    )
                )
            if not (sender.description and sender.reason):
                raise UserError(_("Describe the sender %s and the reason it is used before submitting.", sender.name))
        self.sudo().write({"state": "submitted", "refusal_reason": False})
        for sender in self:
            gateway = self.env["sms.gateway"].sudo()._get_default_gateway(sender.company_id)
            if gateway.provider == "ovh":  # the operator registers it: OVH's decision comes with Sync senders
                gateway._ovh_submit_sender(sender)
        admins = self.env.ref(ADMIN_GROUP).users.filtered(lambda u: u.active and not u.share)
        for sender in self:
            for admin in admins.filtered(lambda u, s=sender: s.company_id in u.company_ids)[:1]:
                sender.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=_("Approve or refuse the SMS sender %s", sender.name),
                    user_id=admin.id,
                )
        return True

    def action_approve(self):
        self._check_can_decide()
        if self.filtered(lambda s: s.state != "submitted"):
            raise UserError(_("Only submitted senders can be approved."))
        self.sudo().write({"state": "approved", "decided_by_id": self.env.uid, "decided_on": fields.Datetime.now()})
        self.activity_feedback(["mail.mail_activity_data_todo"], feedback=_("Approved"))
        return True

    def action_refuse(self):
        self._check_can_decide()
        for sender in self:
            if sender.state not in ("submitted", "approved"):
                raise UserError(_("Only submitted or approved senders can be refused."))
            if not sender.refusal_reason:
                raise UserError(
                    _("Write the refusal reason for %s so that its requester knows what to change.", sender.name)
                )
        self.sudo().write({"state": "refused", "is_default": False, "decided_by_id": self.env.uid,
                           "decided_on": fields.Datetime.now()})
        self.activity_feedback(["mail.mail_activity_data_todo"], feedback=_("Refused"))
        return True

    def _sms_operator_decision(self, state, reason=""):
        """Follow the operator's decision on this sender (``state``: submitted, approved or refused),
        through the workflow's own steps: a draft the operator knows is submitted first; a refusal
        keeps the operator's comment as its reason. Called by a provider's sender sync."""
        self.ensure_one()
        if state == self.state:
            return False
        if self.state in ("draft", "refused") and state in ("submitted", "approved", "refused"):
            if state == "refused" and self.state == "refused":
                return False
            self.sudo().write({"state": "submitted", "refusal_reason": False})
        if state == "approved":
            self.sudo().action_approve()
        elif state == "refused":
            self.sudo().refusal_reason = reason or _("Refused by the operator.")
            self.sudo().action_refuse()
        labels = dict(self._fields["state"]._description_selection(self.env))
        self.message_post(body=_("State set by the operator: %s.", labels.get(state, state)))
        return True

    def action_reset_draft(self):
        if self.filtered(lambda s: s.state != "refused"):
            raise UserError(_("Only refused senders go back to draft."))
        self.sudo().write({"state": "draft"})
        return True

    def action_suggest_from_company(self):
        for sender in self:
            if sender.state not in ("draft", "refused"):
                raise UserError(_("Only a draft sender can be renamed."))
            suggestion = self.sms_suggest_name(sender.company_id.id)
            sender.write({"name": suggestion, "sender_type": sender_tools.ALPHANUMERIC})
        return True

    @api.model
    def sms_suggest_name(self, company_id=False):
        """The alphanumeric sender "Suggest from company" proposes for ``company_id`` (else the
        current company), read with the caller's rights. The form's button (widget
        ``sms_ext_suggest_sender``) puts it in the unsaved record: no save first, so that an
        empty name never blocks it ("Invalid fields: Sender", issue 13 §11)."""
        company = self.env["res.company"].browse(company_id) if company_id else self.env.company
        suggestion = sender_tools.suggest_alphanumeric_sender(company.name)
        if not suggestion:
            raise UserError(_("The company name %s gives no valid alphanumeric sender: type one.", company.name))
        return suggestion

    @api.model
    def _get_default_sender(self, company=None):
        company = company or self.env.company
        return self.search(
            [("company_id", "=", company.id), ("state", "=", "approved"), ("is_default", "=", True)], limit=1
        )
