"""Tests of the local SMS gateway (run from the repository root: python3 -m unittest discover -s gateway/tests -t .)."""
