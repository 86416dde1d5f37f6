from . import sms_links
from . import sms_segments
from . import sms_sender
