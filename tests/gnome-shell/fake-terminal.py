#!/usr/bin/python3
"""Stands in for a terminal in tests/gnome-shell/test_shell.py: the
extension runs it as "terminal-command" followed by the banger command;
it records that command (one JSON array per line) in the test's world."""
import json
import os
import sys

with open(os.path.join(os.environ['BANGER_GS_WORLD'], 'terminal.log'), 'a') as f:
    f.write(json.dumps(sys.argv[1:]) + '\n')
