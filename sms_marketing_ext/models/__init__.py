from . import mailing_mailing, res_company, res_config_settings, sms_sender
