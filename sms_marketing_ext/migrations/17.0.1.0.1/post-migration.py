"""The send cron calls ``_cron_sms_send`` (Odoo's ``_cron_`` naming; it was ``_sms_cron_send``).
Its record is ``noupdate``, so a database installed before keeps the old code: update it."""

from odoo import SUPERUSER_ID, api

OLD_CODE = "model._sms_cron_send()"
NEW_CODE = "model._cron_sms_send()"


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    cron = env.ref("sms_marketing_ext.ir_cron_sms_marketing_send", raise_if_not_found=False)
    if cron and (cron.code or "").strip() == OLD_CODE:
        cron.code = NEW_CODE
