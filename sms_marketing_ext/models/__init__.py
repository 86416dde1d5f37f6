from . import mailing_mailing
from . import mailing_trace
from . import res_company
from . import res_config_settings
from . import sms_gateway
from . import sms_gateway_price
from . import sms_sender
