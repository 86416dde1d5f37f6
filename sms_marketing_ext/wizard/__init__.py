from . import mailing_list_sms_import
from . import mailing_sms_audience
from . import mailing_sms_audience_line
from . import mailing_sms_test
from . import phone_blacklist_export
from . import phone_blacklist_import
from . import phone_blacklist_import_line
from . import phone_blacklist_remove
