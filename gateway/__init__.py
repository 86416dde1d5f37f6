"""Local SMS gateway speaking the project's IAP-style gateway protocol (version 1), for demos and tests.

A real HTTP server (standard library only) for ``sms_marketing_ext``: JSON-RPC 2.0 routes
``<base>/api/sms/1/balance``, ``/prices`` and ``/send``; accounts, balances and messages in SQLite
(one transaction per batch, per-uuid idempotency); signed delivery reports and inbound messages;
fault injection changeable at runtime; loopback-only admin routes and a CLI on the SQLite file.

One concern per module, each depending only on the ones above it:

- :mod:`gateway.protocol`: constants, errors, request validation, SMS parts, countries, signatures;
- :mod:`gateway.store`: SQLite persistence (accounts, charging a batch, the report queue, inbound traces);
- :mod:`gateway.callbacks`: the signed-callback HTTP client and the inbound-message callback;
- :mod:`gateway.settings`: runtime settings (fault injection, report behaviour) and their random draws;
- :mod:`gateway.reports`: the delivery-report dispatcher (scheduler and posting threads);
- :mod:`gateway.server`: the JSON-RPC application, the HTTP handler and the admin routes;
- :mod:`gateway.cli`: the command line (``serve``, ``account-create``, ``accounts``, ...).

Run ``python3 gateway/sms_gateway.py --help`` or ``python3 -m gateway --help`` from the repository root.
"""
