from . import sms_audience
from . import sms_gateway_api
from . import sms_keywords
from . import sms_links
from . import sms_quiet_hours
from . import sms_segments
from . import sms_sender
from . import sms_tokens
