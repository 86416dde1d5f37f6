from . import sms_links, sms_segments, sms_sender
