import re
import uuid

from markupsafe import Markup

from odoo import _, models
from odoo.exceptions import UserError

from ..tools import sms_gateway_api, sms_phone, sms_tokens

# Test numbers may be separated by commas, semicolons or new lines.
NUMBER_SEPARATORS = re.compile(r"[,;\n\r]+")


class MailingSmsTest(models.TransientModel):
    """Test send through the mailing's gateway, rendered and shortened exactly like the real
    send. Test SMS are sent at once and logged on the mailing; no trace or queued SMS is created,
    so no cron ever sends them again."""

    _inherit = "mailing.sms.test"

    def _parse_numbers(self):
        raw_numbers = [number.strip() for number in NUMBER_SEPARATORS.split(self.numbers or "") if number.strip()]
        if not raw_numbers:
            raise UserError(_("Type at least one phone number to send the test to."))
        if len(raw_numbers) > 50:
            raise UserError(_("A test goes to 50 numbers at most (%s given).", len(raw_numbers)))
        valid, invalid = [], []
        region = (self.env.user.country_id or self.env.company.country_id).code
        for raw in raw_numbers:
            number = sms_phone.normalize(raw, region).number
            (valid if number else invalid).append(number or raw)
        return list(dict.fromkeys(valid)), invalid

    def action_send_sms(self):
        self.ensure_one()
        mailing = self.mailing_id
        if mailing.mailing_type != "sms" or mailing._sms_uses_stock_pipeline():
            return super().action_send_sms()
        numbers, invalid = self._parse_numbers()
        # Only an approved sender of the mailing's company, through its gateway, ever reaches it.
        error = mailing._sms_delivery_error()
        if error:
            raise UserError(error)
        gateway = mailing._sms_get_gateway()
        sample = self.env[mailing.mailing_model_real].search([], limit=1)
        # The token of a trace that does not exist: links work, and attribute no click.
        body = mailing._sms_render_bodies([(sms_tokens.MAX_ID, sample.id)])[sms_tokens.MAX_ID]
        lines = [_("The following numbers are not valid phone numbers: %s", ", ".join(invalid))] if invalid else []
        if numbers:
            messages = [
                {"uuid": uuid.uuid4().hex, "number": number, "content": body,
                 "sender": mailing.sms_sender_id.name or None, "sms_class": mailing.sms_class}
                for number in numbers
            ]
            try:
                with gateway._get_api() as api:
                    results = api.send(messages)
            except sms_gateway_api.GatewayError as error:
                raise UserError(_("The test SMS could not be sent: %s", gateway._error_message(error))) from error
            by_uuid = {result["uuid"]: result for result in results}
            reasons = {
                "insufficient_credit": _("not enough credit on the gateway account"),
                "wrong_number_format": _("not a valid mobile number for the gateway"),
                "invalid_sender": _("the sender is not allowed on the gateway account"),
                "server_error": _("the gateway failed, try again"),
            }
            for message in messages:
                state = by_uuid.get(message["uuid"], {}).get("state", "server_error")
                if state == "accepted":
                    lines.append(_("Test SMS sent to %s.", message["number"]))
                else:
                    lines.append(_("Test SMS to %(number)s not sent: %(reason)s", number=message["number"],
                                   reason=reasons.get(state, state)))
        mailing._message_log(
            body=Markup("<p>%s</p><ul>%s</ul><pre>%s</pre>") % (
                _("Test of this SMS:"), Markup("").join(Markup("<li>%s</li>") % line for line in lines), body,
            )
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Test SMS"),
                "message": " ".join(lines),
                "type": "success" if numbers and not invalid else "warning",
                "sticky": bool(invalid),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
