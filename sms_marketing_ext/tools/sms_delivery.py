"""Pure rules of SMS delivery (no Odoo import): what a message is while the send cron holds it,
what a batch costs, the credit left while a cron run spends it, when a failed call is tried again and
how a gateway's answers and delivery reports become trace states.

>>> batch = [SmsMessage(1, "a" * 32, "+33612345678", "FR", 2, 0, 7),
...          SmsMessage(2, "b" * 32, "+32470123456", "BE", 1, 3, 8)]
>>> batch_cost([(message.parts, message.country) for message in batch], {"FR": 0.05}, 0.08)
0.18
>>> ledger = CreditLedger()
>>> ledger.record(5, 1.0)
>>> ledger.covers(5, 0.18)
True
>>> ledger.spend(5, 0.9)
>>> ledger.covers(5, 0.18)
False
"""

from typing import NamedTuple

# Retries of transient gateway errors wait 30 s, 1 min, 2 min... up to 1 hour.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
# Credits are floats: a balance that covers a cost to within this margin covers it.
CREDIT_EPSILON = 1e-9

# Failures worth another try: the gateway failed, refused the account or lacked credit.
# Wrong numbers, refused senders and delivery failures would fail the same way again.
RETRYABLE_FAILURES = ("sms_server", "sms_acc", "sms_credit")

# Per-message result of the gateway's send call -> (trace_status, failure_type)
GATEWAY_SEND_STATE = {
    "accepted": ("pending", False),
    "insufficient_credit": ("outgoing", "sms_credit"),  # kept: sent once credit is back
    "wrong_number_format": ("error", "sms_number_format"),
    "invalid_sender": ("error", "sms_sender_invalid"),
    "server_error": ("outgoing", "sms_server"),  # kept: retried with backoff
}
# A message whose send answer was lost, at a provider without idempotent send: counted as sent,
# never sent again; its delivery report (or a status query) settles it.
UNKNOWN_STATE = "unknown"
# What a send result the gateway should never answer becomes.
UNKNOWN_SEND_STATE = ("error", "unknown")
# Delivery report state -> (trace_status, failure_type)
GATEWAY_REPORT_STATE = {
    "delivered": ("sent", False),
    "undelivered": ("error", "sms_not_delivered"),
    "expired": ("error", "sms_expired"),
    "rejected": ("bounce", "sms_rejected"),
}


class SmsMessage(NamedTuple):
    """One outgoing message claimed by the send cron (a row of its ``mailing_trace``)."""

    trace_id: int
    uuid: str
    number: str
    country: str | None
    parts: int
    attempts: int
    res_id: int


def backoff_seconds(attempts):
    """Seconds to wait before the next try of a message already tried ``attempts`` times
    (doubling from :data:`RETRY_BASE_SECONDS`, at most :data:`RETRY_MAX_SECONDS`).

    >>> [backoff_seconds(attempts) for attempts in range(9)]
    [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    """
    return min(RETRY_BASE_SECONDS * 2 ** attempts, RETRY_MAX_SECONDS)


def message_cost(parts, country, prices, default_price):
    """Credits of one message of ``parts`` parts to ``country`` (ISO code, None when unknown):
    the country's price per part in ``prices``, else ``default_price``.

    >>> message_cost(3, "FR", {"FR": 0.05}, 0.08), message_cost(1, None, {"FR": 0.05}, 0.08)
    (0.15000000000000002, 0.08)
    """
    return parts * prices.get(country, default_price)


def batch_cost(messages, prices, default_price):
    """Credits of ``messages``, an iterable of ``(parts, country)`` (see :func:`message_cost`).

    >>> batch_cost([(1, "FR"), (1, "FR"), (2, "US")], {"FR": 0.5}, 0.25)
    1.5
    >>> batch_cost([], {}, 0.25)
    0
    """
    return sum(message_cost(parts, country, prices, default_price) for parts, country in messages)


def covers(balance, cost):
    """Whether ``balance`` pays for ``cost``; an unknown balance (None) is not checked.

    >>> covers(1.0, 1.0), covers(0.1 + 0.2, 0.3), covers(0.99, 1.0), covers(None, 1e6)
    (True, True, False, True)
    """
    return balance is None or balance + CREDIT_EPSILON >= cost


class CreditLedger:
    """The balance of each gateway during one run of the send cron: read from the gateway once
    (:meth:`record`), then spent locally as batches are charged (:meth:`spend`). A balance the
    gateway could not tell is None: sending goes on without a credit check.

    >>> ledger = CreditLedger({1: 10.0})
    >>> 1 in ledger, 2 in ledger
    (True, False)
    >>> ledger.spend(1, 2.5)
    >>> ledger.balance(1)
    7.5
    >>> ledger.record(2, None)
    >>> ledger.spend(2, 2.5)
    >>> ledger.balance(2) is None, ledger.covers(2, 1e6)
    (True, True)
    >>> ledger.balance(3) is None
    True
    """

    def __init__(self, balances=None):
        self._balances = dict(balances or {})

    def __contains__(self, gateway_id):
        """Whether the balance of ``gateway_id`` was recorded in this run (possibly as unknown)."""
        return gateway_id in self._balances

    def __repr__(self):
        return f"CreditLedger({self._balances!r})"

    def record(self, gateway_id, balance):
        """Set the balance the gateway reported (None: it could not tell)."""
        self._balances[gateway_id] = balance

    def balance(self, gateway_id):
        """The credits left on ``gateway_id``, None when unknown or never recorded."""
        return self._balances.get(gateway_id)

    def spend(self, gateway_id, amount):
        """Take ``amount`` credits off a known balance."""
        if self._balances.get(gateway_id) is not None:
            self._balances[gateway_id] -= amount

    def covers(self, gateway_id, cost):
        """Whether the balance of ``gateway_id`` pays for ``cost`` (see :func:`covers`)."""
        return covers(self.balance(gateway_id), cost)


def trace_state_for_send(state):
    """``(trace_status, failure_type)`` of a message the gateway answered ``state`` to.

    >>> trace_state_for_send("accepted"), trace_state_for_send("server_error"), trace_state_for_send("??")
    (('pending', False), ('outgoing', 'sms_server'), ('error', 'unknown'))
    >>> trace_state_for_send(UNKNOWN_STATE)
    ('pending', False)
    """
    if state == UNKNOWN_STATE:
        return GATEWAY_SEND_STATE["accepted"]
    return GATEWAY_SEND_STATE.get(state, UNKNOWN_SEND_STATE)


def trace_state_for_report(state):
    """``(trace_status, failure_type)`` of a delivery report's ``state`` (one of the protocol's
    report states: anything else is a KeyError).

    >>> trace_state_for_report("delivered"), trace_state_for_report("rejected")
    (('sent', False), ('bounce', 'sms_rejected'))
    """
    return GATEWAY_REPORT_STATE[state]
