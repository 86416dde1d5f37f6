"""Former home of the JSON-RPC gateway client, kept so that existing imports go on working.

The providers live in :mod:`.providers` now: the interface and shared errors in
``providers/base.py``, the JSON-RPC protocol in ``providers/jsonrpc.py``, Odoo IAP's pure part in
``providers/odoo_iap.py``. New code imports from there.
"""

from .providers.base import (
    COUNTRY_CODE_RE,
    EARLIEST_CALLBACK_DATE,
    MAX_BATCH,
    MAX_CLOCK_SKEW,
    REPORT_STATES,
    SEND_STATES,
    SMS_CLASSES,
    STATUS_STATES,
    UUID_RE,
    GatewayAccessError,
    GatewayConfigurationError,
    GatewayError,
    GatewayInsufficientCreditError,
    GatewayResponseError,
    GatewayServerError,
    GatewayTransientError,
    GatewayUnsupportedError,
    GatewayValidationError,
    callback_datetime,
    gateway_error,
    parse_utc_datetime,
    validate_messages,
)
from .providers.jsonrpc import (
    API_PATH,
    SIGNATURE_HEADER,
    SmsGatewayApi,
    parse_delivery_report,
    parse_inbound,
    sign,
    verify_signature,
)
from .providers.odoo_iap import IAP_SUCCESS_STATES, IAP_TO_PROTOCOL_STATE, iap_state_to_protocol

__all__ = [
    "API_PATH",
    "COUNTRY_CODE_RE",
    "EARLIEST_CALLBACK_DATE",
    "IAP_SUCCESS_STATES",
    "IAP_TO_PROTOCOL_STATE",
    "MAX_BATCH",
    "MAX_CLOCK_SKEW",
    "REPORT_STATES",
    "SEND_STATES",
    "SIGNATURE_HEADER",
    "SMS_CLASSES",
    "STATUS_STATES",
    "UUID_RE",
    "GatewayAccessError",
    "GatewayConfigurationError",
    "GatewayError",
    "GatewayInsufficientCreditError",
    "GatewayResponseError",
    "GatewayServerError",
    "GatewayTransientError",
    "GatewayUnsupportedError",
    "GatewayValidationError",
    "SmsGatewayApi",
    "callback_datetime",
    "gateway_error",
    "iap_state_to_protocol",
    "parse_delivery_report",
    "parse_inbound",
    "parse_utc_datetime",
    "sign",
    "validate_messages",
    "verify_signature",
]
