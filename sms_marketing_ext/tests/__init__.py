from . import test_install
from . import test_mailing_composer
from . import test_sms_counter_browser
from . import test_sms_segments
from . import test_sms_sender
