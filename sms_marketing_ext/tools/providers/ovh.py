"""Provider ``ovh``: OVHcloud SMS through OVH's REST API, with the official ``ovh`` client (no Odoo import).

* Credentials as OVH issues them: an endpoint (``ovh-eu``, ``ovh-ca``...), an application key and
  secret and a consumer key; plus the SMS service name (``sms-ab12345-1``). The ``ovh`` client
  signs every call: ``X-Ovh-Signature = "$1$" + sha1(secret+consumer+METHOD+URL+BODY+TIMESTAMP)``
  with the timestamp taken from ``/auth/time``.
* Sending: one ``POST /sms/{service}/jobs`` per message (each message has its own rendered text),
  with ``tag`` = our uuid, ``class``, ``coding``, ``noStopClause``, ``senderForResponse``,
  ``validityPeriod`` and ``differedPeriod``; OVH's message id (``ids``) is kept as the provider ref.
* Balance: the service's ``creditsLeft``. Prices: ``GET /sms/rates/destinations?country=xx``
  (``credit``: credits per SMS towards that country) for the configured countries.
* Delivery: OVH does not need to call us. ``GET /sms/{service}/outgoing?tag=<uuid>`` finds a
  message by our reference, ``GET /sms/{service}/outgoing/{id}`` gives its ``deliveryReceipt``
  (1 delivered, 2 not delivered, 16 refused by the operator; 0, 4 and 8 not final) and ``ptt``
  (OVH's detailed code, e.g. 801 expired, 53 blacklisted): :meth:`OvhClient.status`, and
  :meth:`OvhClient.delivery_results` for the recent messages of a periodic poll.
* Replies: ``GET /sms/{service}/incoming`` (since a date) and ``/incoming/{id}``
  (:meth:`OvhClient.incoming`); each has a stable id, so a reply read twice is applied once.
  OVH's own STOP blacklist (those who answered its STOP mention, ``STOP au 36180``):
  ``GET /sms/{service}/blacklists`` and ``/blacklists/{number}``
  (:meth:`OvhClient.blacklisted_numbers`, :meth:`OvhClient.blacklist_entries`).
* Senders: ``/sms/{service}/senders`` (status ``waitingValidation``, ``enable``, ``refused``,
  ``disable``); a request posts the sender, then its justification document
  (``POST .../senders/{sender}/documents`` gives an upload URL, the file is PUT there).
* No idempotency key, but the tag finds a message: a send whose answer was lost is looked up at
  once (found: accepted, never sent again; not found: "unknown" until the status query settles it).

>>> ovh_coding("Prix 5€"), ovh_coding("Merci 😀")
('7bit', '8bit')
>>> OVH_CLASSES["standard"], SENDER_STATES["waitingValidation"], SENDER_STATES["enable"]
('phoneDisplay', 'submitted', 'approved')
>>> outgoing_state({"deliveryReceipt": 2, "ptt": 801}), outgoing_state({"deliveryReceipt": 8, "ptt": 0})
('expired', 'pending')
"""

import logging
import urllib.parse
from datetime import timezone

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
    parse_utc_datetime,
    request_failed,
    validate_messages,
)

_logger = logging.getLogger(__name__)

OVH_CLASSES = {"standard": "phoneDisplay", "flash": "flash", "sim": "sim"}
# OVH sender statuses -> our sender workflow states.
SENDER_STATES = {"waitingValidation": "submitted", "enable": "approved", "disable": "refused", "refused": "refused"}
# What OVH appends to a commercial SMS from an alphanumeric sender unless noStopClause is set.
STOP_NUMBER = "36180"  # OVH's short number that takes the STOP answers (its own blacklist)
STOP_MENTION = f"\nSTOP au {STOP_NUMBER}"
ENDPOINTS = tuple(ovh.client.ENDPOINTS)
# deliveryReceipt of an outgoing SMS (the operator's receipt, as in OVH's callback's "dlr").
DLR_DELIVERED, DLR_NOT_DELIVERED, DLR_REFUSED = 1, 2, 16
# ptt (OVH's "Premium Tracking Technical" code, listed in OVH's SMPP specification) of a failure:
# the destination or the message refused, not a delivery attempt that failed.
PTT_EXPIRED = 801
PTT_REJECTED = frozenset({3, 5, 8, 10, 52, 53, 54, 100, 101, 102, 103, 803})
# Final states OVH records without a receipt (SMPP message states 800-803).
PTT_FINAL = {800: "undelivered", 801: "expired", 802: "undelivered", 803: "rejected"}
# Outgoing messages looked up one by one in a poll, at most (the rest waits for the next poll).
MAX_POLLED_MESSAGES = 2000


def outgoing_state(outgoing):
    """Our report state of an OVH ``sms.Outgoing`` (``pending`` while not final).

    >>> outgoing_state({"deliveryReceipt": 1, "ptt": 0})
    'delivered'
    >>> outgoing_state({"deliveryReceipt": 2, "ptt": 53}), outgoing_state({"deliveryReceipt": 2, "ptt": 9})
    ('rejected', 'undelivered')
    >>> outgoing_state({"deliveryReceipt": 16, "ptt": 0}), outgoing_state({"deliveryReceipt": 0, "ptt": 803})
    ('rejected', 'rejected')
    """
    receipt, ptt = outgoing.get("deliveryReceipt"), outgoing.get("ptt")
    if receipt == DLR_DELIVERED:
        return "delivered"
    if receipt in (DLR_NOT_DELIVERED, DLR_REFUSED):
        if ptt == PTT_EXPIRED:
            return "expired"
        if ptt in PTT_REJECTED or receipt == DLR_REFUSED:
            return "rejected"
        return "undelivered"
    return PTT_FINAL.get(ptt, "pending")


def ovh_datetime(value):
    """An OVH ``datetime`` query value (ISO 8601 with its offset) of a naive UTC ``datetime``.

    >>> from datetime import datetime
    >>> ovh_datetime(datetime(2024, 5, 1, 12, 0, 5, 123))
    '2024-05-01T12:00:05+00:00'
    """
    return value.replace(microsecond=0, tzinfo=timezone.utc).isoformat()


def _optional_datetime(value):
    try:
        return parse_utc_datetime(value) if value else None
    except ValueError:
        return None


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
    CAPABILITIES = Capabilities(balance=True, prices=True, status_query=True, inbound=True, sender_sync=True,
                                message_classes=True)

    def __init__(self, endpoint, application_key, application_secret, consumer_key, service_name,
                 no_stop_clause=False, sender_for_response=False, validity=0, price_countries=(), timeout=10,
                 session=None):
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
        self.price_countries = [code.lower() for code in price_countries or ()]
        self._secrets = (application_secret, consumer_key)

    @property
    def base_path(self):
        return f"/sms/{urllib.parse.quote(self.service, safe='')}"

    def _call(self, method, path, data=None, need_auth=True):
        """One signed call (``data``: the query of a GET, else the JSON body); OVH's errors as
        :class:`GatewayError`."""
        try:
            if method == "GET":
                return self.client.get(path, _need_auth=need_auth, **(data or {}))
            return self.client.call(method, path, data, need_auth)
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

    def prices(self):
        """Credits per SMS towards each configured country, from OVH's public rates
        (``/sms/rates/destinations``); the default (countries not listed) is the dearest of them.
        None when no country is configured: the gateway's prices stay as they are."""
        if not self.price_countries:
            return None
        countries = {}
        for code in self.price_countries:
            rate = self._call("GET", "/sms/rates/destinations", {"country": code}, need_auth=False)
            if not isinstance(rate, dict) or not isinstance(rate.get("credit"), int | float):
                raise GatewayResponseError(message=f"OVH's rates for {code} have no credit")
            countries[code.upper()] = float(rate["credit"])
        return {"default": max(countries.values(), default=0.0), "countries": countries}

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
                if not error.maybe_sent:
                    results.append({"uuid": message["uuid"], "credits": 0.0, "state": "server_error"})
                    continue
                results.append({"uuid": message["uuid"], **self._lost_answer_result(message["uuid"])})
                continue
            except GatewayValidationError as error:
                text = error.message.lower()
                state = "invalid_sender" if "sender" in text else (
                    "insufficient_credit" if "credit" in text else "wrong_number_format")
                results.append({"uuid": message["uuid"], "state": state, "credits": 0.0})
                continue
            results.append({"uuid": message["uuid"], **_job_result(answer)})
        return results

    def _lost_answer_result(self, uuid):
        """The send result of a message whose job answer was lost: OVH's outgoing message with our
        tag when OVH has it already (accepted: never posted again), else ``unknown`` (it may still
        be queued as a job, which has no tag: the status query or the poll settles it later)."""
        try:
            found = self._find_outgoing(uuid)
        except GatewayError as error:
            _logger.info("OVH: looking up the message %s after a lost answer failed: %s", uuid, error)
            found = None
        if not found:
            return {"state": "unknown", "credits": 0.0}
        return {"state": "accepted", "credits": float(found.get("credits") or 0.0), "provider_ref": str(found["id"])}

    def _outgoing(self, ovh_id):
        detail = self._call("GET", f"{self.base_path}/outgoing/{int(ovh_id)}")
        if not isinstance(detail, dict):
            raise GatewayResponseError(message="OVH's outgoing SMS is not an object")
        return detail

    def _find_outgoing(self, uuid):
        """OVH's outgoing SMS tagged ``uuid`` (the most advanced one when several), else None."""
        ids = self._call("GET", f"{self.base_path}/outgoing", {"tag": uuid})
        if not isinstance(ids, list):
            raise GatewayResponseError(message="OVH's outgoing list is not a list")
        found = [detail for detail in (self._outgoing(ovh_id) for ovh_id in ids) if detail.get("tag") == uuid]
        final = [detail for detail in found if outgoing_state(detail) != "pending"]
        return (final or found or [None])[0]

    def status(self, uuids):
        """The state of each message, found by its tag in OVH's outgoing SMS (the answer then
        carries OVH's id as ``provider_ref``). A message OVH has not there is ``pending`` while OVH
        still holds queued jobs (a job has no tag to tell them apart), else ``unknown``: OVH never
        took it."""
        answers, jobs_queued = {}, None
        for uuid in uuids:
            detail = self._find_outgoing(uuid)
            if detail is None:
                if jobs_queued is None:
                    jobs = self._call("GET", f"{self.base_path}/jobs")
                    jobs_queued = bool(jobs) if isinstance(jobs, list) else True
                answers[uuid] = {"state": "pending" if jobs_queued else "unknown", "at": None}
                continue
            answers[uuid] = {**self._answer_of(detail), "provider_ref": str(detail["id"])}
        return answers

    @staticmethod
    def _answer_of(detail):
        """``{"state", "at", "ptt"}`` of an outgoing SMS; ``at``: when it was delivered (else sent)."""
        state, at = outgoing_state(detail), None
        if state != "pending":
            at = _optional_datetime(detail.get("deliveredAt") if state == "delivered" else None) or _optional_datetime(
                detail.get("sentAt") or detail.get("creationDatetime"))
        return {"state": state, "at": at, "ptt": detail.get("ptt")}

    def delivery_results(self, refs, since):
        """Final states of recently sent messages, in few calls: the ids of OVH's outgoing SMS
        created since ``since`` (naive UTC) with a final receipt (one listing per receipt), crossed
        with ``refs`` (``{OVH id: uuid}``, the ids OVH answered at send), then each match read
        once (its tag must be the uuid). Returns ``{uuid: {"state", "at", "ptt"}}``, final only."""
        wanted = {str(ref): uuid for ref, uuid in refs.items()}
        matches = []
        for receipt in (DLR_DELIVERED, DLR_NOT_DELIVERED, DLR_REFUSED):
            ids = self._call("GET", f"{self.base_path}/outgoing",
                             {"deliveryReceipt": receipt, "creationDatetime.from": ovh_datetime(since)})
            if not isinstance(ids, list):
                raise GatewayResponseError(message="OVH's outgoing list is not a list")
            matches += [str(ovh_id) for ovh_id in ids if str(ovh_id) in wanted]
        answers = {}
        for ovh_id in matches[:MAX_POLLED_MESSAGES]:
            detail = self._outgoing(ovh_id)
            uuid = wanted[ovh_id]
            if detail.get("tag") != uuid:
                _logger.warning("OVH: outgoing SMS %s is tagged %r, not %s: ignored", ovh_id, detail.get("tag"), uuid)
                continue
            answer = self._answer_of(detail)
            if answer["state"] != "pending":
                answers[uuid] = answer
        return answers

    def incoming(self, since=None):
        """The replies OVH received (since ``since``, naive UTC, when given), oldest first:
        ``[{"id", "from", "to", "body", "at", "message_id"}]``. ``to`` is the service (OVH does
        not say which of its numbers got the reply); ``message_id`` is OVH's id, stable: a reply
        read again is recognised."""
        query = {"creationDatetime.from": ovh_datetime(since)} if since else None
        ids = self._call("GET", f"{self.base_path}/incoming", query)
        if not isinstance(ids, list):
            raise GatewayResponseError(message="OVH's incoming list is not a list")
        replies = []
        for ovh_id in sorted(ids)[:MAX_POLLED_MESSAGES]:
            detail = self._call("GET", f"{self.base_path}/incoming/{int(ovh_id)}")
            at = _optional_datetime((detail or {}).get("creationDatetime"))
            if not isinstance(detail, dict) or not isinstance(detail.get("message"), str) or not at:
                _logger.warning("OVH: incoming SMS %s is malformed: ignored", ovh_id)
                continue
            replies.append({"id": int(ovh_id), "from": str(detail.get("sender") or ""), "to": self.service,
                            "body": detail["message"].replace("\x00", ""), "at": at,
                            "message_id": f"ovh:{self.service}:{int(ovh_id)}"})
        return sorted(replies, key=lambda reply: (reply["at"], reply["id"]))

    def blacklisted_numbers(self):
        """The numbers on OVH's own STOP blacklist of the service (OVH refuses to send to them since
        their owner answered its STOP mention): ``GET /sms/{service}/blacklists``."""
        numbers = self._call("GET", f"{self.base_path}/blacklists")
        if not isinstance(numbers, list):
            raise GatewayResponseError(message="OVH's blacklist is not a list")
        return sorted(str(number) for number in numbers)

    def blacklist_entries(self, numbers):
        """``[{"number", "at", "message_id"}]`` of OVH's blacklist entries of ``numbers`` (at most
        :data:`MAX_POLLED_MESSAGES`), from ``/blacklists/{number}`` (``dateCreation``);
        ``message_id`` names the entry by its number and date: an entry read twice is the same,
        one created again after its deletion is new."""
        entries = []
        for number in list(numbers)[:MAX_POLLED_MESSAGES]:
            detail = self._call("GET", f"{self.base_path}/blacklists/{urllib.parse.quote(number, safe='')}")
            at = _optional_datetime(detail.get("dateCreation")) if isinstance(detail, dict) else None
            if not at:
                _logger.warning("OVH: blacklist entry %s has no creation date: ignored", number)
                continue
            entries.append({"number": number, "at": at,
                            "message_id": f"ovh-blacklist:{self.service}:{number}:{at.isoformat()}"})
        return entries

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

    def request_sender(self, name, description="", reason="", document=None, document_name=None):
        """Submit sender ``name`` to OVH, unless OVH has it already: then return its state there.
        ``document`` (bytes) is the justification OVH's moderators read: a document is created on
        the sender and the file uploaded to the URL OVH gives for it."""
        sender_path = f"{self.base_path}/senders/{urllib.parse.quote(name, safe='')}"
        try:
            detail = self._call("GET", sender_path)
        except GatewayConfigurationError:
            detail = None
        if isinstance(detail, dict) and detail.get("status"):
            return SENDER_STATES.get(detail["status"], "submitted")
        self._call("POST", f"{self.base_path}/senders", {"sender": name, "description": description,
                                                         "reason": reason})
        if document:
            created = self._call("POST", f"{sender_path}/documents",
                                 {"name": document_name or "justification", "description": reason or description})
            put_url = (created or {}).get("putUrl") if isinstance(created, dict) else None
            if not put_url:
                raise GatewayResponseError(message="OVH gave no upload URL for the sender's document")
            try:
                response = self.session.put(put_url, data=document, timeout=self.timeout)
            except requests.exceptions.RequestException as exc:
                raise request_failed(exc, put_url.split("?")[0], self.timeout) from exc
            if response.status_code >= 300:
                raise GatewayServerError(message=f"OVH refused the sender's document (HTTP {response.status_code})")
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
    return {"state": "accepted", "credits": float(charged), "provider_ref": str(answer["ids"][0])}


__all__ = ["GatewayError", "OvhClient", "outgoing_state", "ovh_coding", "with_stop_mention"]
