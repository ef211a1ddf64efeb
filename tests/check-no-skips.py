#!/usr/bin/python3
"""Fails when meson's test log shows a skipped test: a skipped test is one
that proved nothing, and CI must not pass because of it."""
import json
import sys

skipped = []
with open(sys.argv[1]) as f:
    for line in f:
        entry = json.loads(line)
        if entry.get("result") == "SKIP":
            skipped.append(entry.get("name"))
if skipped:
    print("skipped tests (not allowed):", ", ".join(skipped))
    sys.exit(1)
print("no skipped tests")
