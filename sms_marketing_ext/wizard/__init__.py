from . import mailing_list_sms_import
from . import mailing_sms_audience
from . import mailing_sms_audience_line
from . import mailing_sms_test
