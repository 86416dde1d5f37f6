#!/usr/bin/env python3
"""Launcher of the local SMS gateway: ``python3 gateway/sms_gateway.py COMMAND ...`` from anywhere.

The gateway is the :mod:`gateway` package next to this file (the command line is :mod:`gateway.cli`);
this file only makes ``gateway`` importable when run as a script, whatever the current directory.
"""

import os
import sys

if __package__ in (None, ""):
    # Run as a script, sys.path[0] is this directory: put the repository root there instead, so that the
    # package's modules are imported as gateway.* and none of them shadows a top-level module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
