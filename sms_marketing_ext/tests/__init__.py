from . import test_install, test_mailing_composer, test_sms_counter_browser, test_sms_segments, test_sms_sender
