"""Provider ``odoo_iap``: stock Odoo IAP, pure part (no Odoo import).

The client itself calls stock's IAP client and reads ``iap.account``, so it lives on the Odoo side
(``models/sms_gateway_odoo_iap.py``); this module holds what it declares and how IAP's send states
map to ours.

IAP takes no idempotency key and offers no status query: a batch whose answer was lost is never
sent again blindly; its messages wait in "unknown" until IAP's delivery report settles them.

>>> iap_state_to_protocol("success", {})
('accepted', False)
>>> iap_state_to_protocol("unregistered", {"unregistered": "sms_acc"})
('insufficient_credit', 'sms_acc')
"""

from .base import Capabilities

CODE = "odoo_iap"
CAPABILITIES = Capabilities(balance=True, delivery_reports=True)

IAP_SUCCESS_STATES = ("success", "processing")
IAP_TO_PROTOCOL_STATE = {
    "insufficient_credit": "insufficient_credit",
    "unregistered": "insufficient_credit",  # no usable IAP account: kept until the account is fixed
    "wrong_number_format": "wrong_number_format",
    "country_not_supported": "wrong_number_format",  # never deliverable through IAP
    "registration_needed": "wrong_number_format",  # idem, until the country registration is done
    "duplicate_message": "wrong_number_format",  # IAP dropped it: same number twice in the batch
    "server_error": "server_error",
}


def iap_state_to_protocol(iap_state, failure_types):
    """Map a stock IAP send state to ``(protocol state, stock failure type or False)``.

    ``failure_types`` is ``sms.sms.IAP_TO_SMS_FAILURE_TYPE``; unknown IAP states are a retriable
    ``server_error`` with failure type ``unknown``.
    """
    if iap_state in IAP_SUCCESS_STATES:
        return "accepted", False
    state = IAP_TO_PROTOCOL_STATE.get(iap_state, "server_error")
    return state, failure_types.get(iap_state, "unknown")
