from . import main
from . import kannel
from . import twilio
