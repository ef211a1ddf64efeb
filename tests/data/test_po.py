#!/usr/bin/python3
"""Translation checks: every file with translatable strings is listed in
po/POTFILES.in, and the pt_BR translation is complete for the current
strings (no untranslated or fuzzy messages)."""
import os
import pathlib
import re
import subprocess
import tempfile
import unittest

SRC = pathlib.Path(os.environ.get("BANGER_SOURCE_ROOT", pathlib.Path(__file__).parents[2]))
MARKERS = re.compile(r'(?<![A-Za-z0-9_])(_|N_|C_|NC_|ngettext|g_dngettext)\s*\(\s*"')


def potfiles():
    listed = []
    for line in (SRC / "po" / "POTFILES.in").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            listed.append(line)
    return listed


def files_with_strings():
    found = set()
    for path in SRC.glob("src/**/*.c"):
        if MARKERS.search(path.read_text(errors="replace")):
            found.add(str(path.relative_to(SRC)))
    for path in SRC.glob("data/**/*.policy.in"):
        found.add(str(path.relative_to(SRC)))
    return found


class PoTest(unittest.TestCase):
    def test_potfiles_complete(self):
        listed = set(potfiles())
        missing = sorted(files_with_strings() - listed)
        self.assertEqual(missing, [], "files with translatable strings missing from po/POTFILES.in")
        gone = sorted(p for p in listed if not (SRC / p).exists())
        self.assertEqual(gone, [], "po/POTFILES.in lists files that do not exist")

    def test_pt_BR_complete(self):
        with tempfile.TemporaryDirectory() as tmp:
            pot = pathlib.Path(tmp) / "banger.pot"
            subprocess.run(
                ["xgettext", "--from-code=UTF-8", "--add-comments", "--keyword=_",
                 "--keyword=N_", "--keyword=C_:1c,2", "--keyword=NC_:1c,2",
                 "--keyword=g_dngettext:2,3", "--keyword=ngettext:1,2",
                 "--files-from=po/POTFILES.in", "-o", str(pot)],
                cwd=SRC, check=True)
            merged = pathlib.Path(tmp) / "pt_BR.po"
            subprocess.run(["msgmerge", "--quiet", "--no-fuzzy-matching", "-o", str(merged),
                            str(SRC / "po" / "pt_BR.po"), str(pot)], check=True)
            out = subprocess.run(["msgfmt", "--check", "--statistics", "-o", os.devnull, str(merged)],
                                 check=True, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
            stats = out.stderr.strip()
            self.assertNotIn("untranslated", stats, stats)
            self.assertNotIn("fuzzy", stats, stats)
            self.assertRegex(stats, r"^\d+ translated messages?\.$")


if __name__ == "__main__":
    unittest.main()
