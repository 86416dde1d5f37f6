"""Provider ``ovh``: OVHcloud SMS through OVH's REST API, with the official ``ovh`` client (no Odoo import).

* Credentials as OVH issues them: an endpoint (``ovh-eu``, ``ovh-ca``...), an application key and
  secret and a consumer key; plus the SMS service name (``sms-ab12345-1``). The ``ovh`` client
  signs every call: ``X-Ovh-Signature = "$1$" + sha1(secret+consumer+METHOD+URL+BODY+TIMESTAMP)``
  with the timestamp taken from ``/auth/time``.
* Sending: one ``POST /sms/{service}/jobs`` per message (each message has its own rendered text),
  with ``tag`` = our uuid, ``class``, ``coding``, ``noStopClause``, ``senderForResponse`` and
  ``validityPeriod``.
* Balance: the service's ``creditsLeft``. Senders: ``/sms/{service}/senders``.
* No idempotency key: a message whose answer was lost waits as "unknown" and is never sent again
  blindly (the send cron's rule).

>>> ovh_coding("Prix 5€"), ovh_coding("Merci 😀")
('7bit', '8bit')
>>> OVH_CLASSES["standard"], SENDER_STATES["waitingValidation"], SENDER_STATES["enable"]
('phoneDisplay', 'submitted', 'approved')
"""

import logging
import urllib.parse

import ovh
import requests

from ..sms_segments import analyze
from .base import (
    Capabilities,
    GatewayAccessError,
    GatewayConfigurationError,
    GatewayError,
    GatewayResponseError,
    GatewayServerError,
    GatewayTransientError,
    GatewayValidationError,
    SmsProvider,
    request_failed,
    validate_messages,
)

_logger = logging.getLogger(__name__)

OVH_CLASSES = {"standard": "phoneDisplay", "flash": "flash", "sim": "sim"}
# OVH sender statuses -> our sender workflow states.
SENDER_STATES = {"waitingValidation": "submitted", "enable": "approved", "disable": "refused", "refused": "refused"}
# What OVH appends to a commercial SMS from an alphanumeric sender unless noStopClause is set.
STOP_MENTION = "\nSTOP au 36180"
ENDPOINTS = tuple(ovh.client.ENDPOINTS)


def ovh_coding(text):
    """``coding`` of ``text`` for a job: ``7bit`` when all of it is GSM 03.38, else ``8bit`` (UCS-2)."""
    return "7bit" if analyze(text)["encoding"] == "gsm7" else "8bit"


def with_stop_mention(text, sender_is_alphanumeric, no_stop_clause):
    """The text as OVH counts it: with its STOP mention for an alphanumeric sender unless disabled.

    >>> with_stop_mention("Hi", True, False), with_stop_mention("Hi", True, True)
    ('Hi\\nSTOP au 36180', 'Hi')
    """
    return text + STOP_MENTION if sender_is_alphanumeric and not no_stop_clause else text


class OvhClient(SmsProvider):
    """Client of one OVH SMS service.

    :param endpoint: an OVH endpoint name (``ovh-eu``) or, for a local test server, a base URL
        (``http://127.0.0.1:8080/1.0``), which the ``ovh`` client then calls in place of OVH's.
    """

    CODE = "ovh"
    CAPABILITIES = Capabilities(balance=True, sender_sync=True, message_classes=True)

    def __init__(self, endpoint, application_key, application_secret, consumer_key, service_name,
                 no_stop_clause=False, sender_for_response=False, validity=0, timeout=10, session=None):
        if not (application_key and application_secret and consumer_key):
            raise GatewayConfigurationError(
                message="the OVH application key, application secret and consumer key are required")
        if not service_name:
            raise GatewayConfigurationError(message="the OVH SMS service name (sms-xx00000-1) is required")
        is_url = (endpoint or "").startswith(("http://", "https://"))
        if not is_url and endpoint not in ENDPOINTS:
            raise GatewayConfigurationError(
                message=f"unknown OVH endpoint {endpoint!r}: one of {', '.join(ENDPOINTS)}")
        super().__init__(timeout=timeout, session=session)
        self.client = ovh.Client(
            endpoint="ovh-eu" if is_url else endpoint, application_key=application_key,
            application_secret=application_secret, consumer_key=consumer_key, timeout=timeout,
        )
        if is_url:
            self.client._endpoint = endpoint.rstrip("/")  # the client takes names only: a local server
        self.client._session = self.session
        self.service = service_name
        self.no_stop_clause, self.sender_for_response = bool(no_stop_clause), bool(sender_for_response)
        self.validity = validity or 0
        self._secrets = (application_secret, consumer_key)

    @property
    def base_path(self):
        return f"/sms/{urllib.parse.quote(self.service, safe='')}"

    def _call(self, method, path, data=None):
        """One signed call; OVH's errors as :class:`GatewayError`."""
        try:
            if method == "GET":
                return self.client.get(path, **(data or {}))
            return self.client.call(method, path, data)
        except ovh.exceptions.HTTPError as exc:
            cause = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Exception) else None
            if isinstance(cause, requests.exceptions.RequestException):
                raise request_failed(cause, self.client._endpoint, self.timeout, self._secrets) from exc
            raise GatewayTransientError(f"cannot reach OVH: {exc}") from exc
        except (ovh.exceptions.InvalidKey, ovh.exceptions.InvalidCredential, ovh.exceptions.NotCredential,
                ovh.exceptions.NotGrantedCall, ovh.exceptions.Forbidden) as exc:
            raise GatewayAccessError(message=f"OVH refused the credentials: {_message(exc)}") from exc
        except ovh.exceptions.BadParametersError as exc:
            # OVH answers a wrong application secret with 400 INVALID_SIGNATURE, a clock off with QUERY_TIME_OUT.
            if _error_code(exc) in ("INVALID_SIGNATURE", "QUERY_TIME_OUT"):
                raise GatewayAccessError(message=f"OVH refused the request's signature: {_message(exc)}") from exc
            raise GatewayValidationError(message=_message(exc)) from exc
        except ovh.exceptions.ResourceNotFoundError as exc:
            raise GatewayConfigurationError(
                message=f"OVH knows no {path} (is the SMS service name right?): {_message(exc)}") from exc
        except ovh.exceptions.InvalidResponse as exc:
            raise GatewayResponseError(message=f"OVH's answer is not JSON: {exc}") from exc
        except ovh.exceptions.APIError as exc:
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if status and status >= 500:
                raise GatewayTransientError(f"OVH answered HTTP {status}: {_message(exc)}", reason="http",
                                            status_code=status) from exc
            raise GatewayServerError(message=_message(exc)) from exc

    def check_connection(self):
        return self.balance()

    def balance(self):
        service = self._call("GET", self.base_path)
        if not isinstance(service, dict) or not isinstance(service.get("creditsLeft"), int | float):
            raise GatewayResponseError(message="OVH's SMS service has no creditsLeft")
        return float(service["creditsLeft"])

    def job_payload(self, message):
        """The body of one message's ``POST /sms/{service}/jobs``."""
        payload = {
            "message": message["content"], "receivers": [message["number"]], "charset": "UTF-8",
            "class": OVH_CLASSES[message["sms_class"]], "coding": ovh_coding(message["content"]),
            "noStopClause": self.no_stop_clause, "priority": "high", "tag": message["uuid"],
            "senderForResponse": self.sender_for_response and not message.get("sender"),
            "differedPeriod": 0,
        }
        if message.get("sender"):
            payload["sender"] = message["sender"]
        if self.validity:
            payload["validityPeriod"] = self.validity
        return payload

    def send(self, messages, webhook_url=None):
        """One job per message; ``{"uuid", "state", "credits"}`` each. A lost answer makes that
        message ``unknown`` and stops the batch (the rest is ``server_error``: tried later)."""
        messages = validate_messages(messages)
        results, stopped = [], False
        for message in messages:
            if stopped:
                results.append({"uuid": message["uuid"], "state": "server_error", "credits": 0.0})
                continue
            try:
                answer = self._call("POST", f"{self.base_path}/jobs", self.job_payload(message))
            except GatewayTransientError as error:
                if not results and not error.maybe_sent:
                    raise
                stopped = True
                results.append({"uuid": message["uuid"], "credits": 0.0,
                                "state": "unknown" if error.maybe_sent else "server_error"})
                continue
            except GatewayValidationError as error:
                text = error.message.lower()
                state = "invalid_sender" if "sender" in text else (
                    "insufficient_credit" if "credit" in text else "wrong_number_format")
                results.append({"uuid": message["uuid"], "state": state, "credits": 0.0})
                continue
            results.append({"uuid": message["uuid"], **_job_result(answer)})
        return results

    def senders(self):
        names = self._call("GET", f"{self.base_path}/senders")
        if not isinstance(names, list):
            raise GatewayResponseError(message="OVH's sender list is not a list")
        result = []
        for name in names:
            detail = self._call("GET", f"{self.base_path}/senders/{urllib.parse.quote(str(name), safe='')}")
            status = (detail or {}).get("status")
            result.append({"name": str(name), "state": SENDER_STATES.get(status, "submitted"), "ovh_status": status,
                           "description": (detail or {}).get("description") or "",
                           "comment": (detail or {}).get("comment") or ""})
        return result

    def request_sender(self, name, description="", reason=""):
        """Submit sender ``name`` to OVH, unless OVH has it already: then return its state there."""
        try:
            detail = self._call("GET", f"{self.base_path}/senders/{urllib.parse.quote(name, safe='')}")
        except GatewayConfigurationError:
            detail = None
        if isinstance(detail, dict) and detail.get("status"):
            return SENDER_STATES.get(detail["status"], "submitted")
        self._call("POST", f"{self.base_path}/senders", {"sender": name, "description": description,
                                                         "reason": reason})
        return "submitted"


def _error_code(exc):
    try:
        return exc.response.json().get("errorCode")
    except (AttributeError, ValueError):
        return None


def _message(exc):
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _job_result(answer):
    """Our send result of OVH's job answer (``ids``, ``validReceivers``, ``invalidReceivers``,
    ``totalCreditsRemoved``)."""
    if not isinstance(answer, dict):
        raise GatewayResponseError(message="OVH's job answer is not an object")
    if answer.get("invalidReceivers"):
        return {"state": "wrong_number_format", "credits": 0.0}
    if not answer.get("ids"):
        raise GatewayResponseError(message="OVH's job answer has no message id")
    charged = answer.get("totalCreditsRemoved") or 0
    return {"state": "accepted", "credits": float(charged), "ovh_ids": list(answer["ids"])}


__all__ = ["GatewayError", "OvhClient", "ovh_coding", "with_stop_mention"]
