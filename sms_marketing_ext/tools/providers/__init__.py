from . import base
from . import jsonrpc
from . import kannel
from . import odoo_iap
from . import twilio
from . import ovh
