"""Local SMS gateway implementing the project's SMS gateway protocol (IAP-style, version 1) for demos and tests.

Everything lives in :mod:`gateway.sms_gateway`; run it with ``python3 gateway/sms_gateway.py ...`` or
``python3 -m gateway ...`` from the repository root.
"""
