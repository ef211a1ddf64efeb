#!/usr/bin/python3
"""The GNOME Shell extension as a package: what meson installs, what
`gnome-extensions pack` makes (and `gnome-extensions install` unpacks), its
translatable strings, and eslint with GNOME Shell's rules
(tests/gnome-shell/lint/). No shell runs here: tests/gnome-shell/test_shell.py
loads the extension into one.

One meson test per case (tests/gnome-shell/meson.build)."""

import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import zipfile

SRC = os.environ['BANGER_SOURCE_ROOT']
BUILD = os.environ['BANGER_BUILD_ROOT']
EXT_SRC = os.path.join(SRC, 'src', 'gnome-shell')
UUID = 'banger@banger.dev'
SCHEMA_ID = 'org.gnome.shell.extensions.banger'
SCHEMA_XML = 'schemas/%s.gschema.xml' % SCHEMA_ID
# Everything the extension consists of, installed or packed alike.
FILES = {'metadata.json', 'extension.js', 'model.js', 'prefs.js', 'stylesheet.css',
         'icons/banger-symbolic.svg', SCHEMA_XML, 'schemas/gschemas.compiled'}
LINT_DIR = os.path.join(SRC, 'tests', 'gnome-shell', 'lint')


def tree(root):
    out = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


class PackageTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='banger-gs-pkg-')
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name

    def run_ok(self, argv, **kw):
        r = subprocess.run(argv, capture_output=True, text=True, **kw)
        self.assertEqual(r.returncode, 0, '%s:\n%s%s' % (' '.join(argv), r.stdout, r.stderr))
        return r

    def assert_schema(self, schemas_dir):
        keys = self.run_ok(['gsettings', '--schemadir', schemas_dir, 'list-keys', SCHEMA_ID])
        self.assertEqual(set(keys.stdout.split()),
                         {'show-stopped', 'terminal-command', 'notifications',
                          'long-job-seconds'})

    def test_metadata(self):
        with open(os.path.join(EXT_SRC, 'metadata.json')) as f:
            meta = json.load(f)
        self.assertEqual(meta['uuid'], UUID)
        # the versions the shell tests run on (Debian 12's GNOME Shell 43)
        self.assertEqual(meta['shell-version'], ['43'])
        self.assertEqual(meta['gettext-domain'], 'banger')
        self.assertEqual(meta['settings-schema'], SCHEMA_ID)
        out = self.run_ok(['gnome-shell', '--version']).stdout
        self.assertRegex(out, r'^GNOME Shell 43\.')

    def test_meson_install(self):
        self.run_ok(['meson', 'install', '-C', BUILD, '--no-rebuild', '--quiet',
                     '--destdir', self.tmp, '--tags', 'gnome-shell'])
        found = glob.glob(os.path.join(self.tmp, '**', 'share', 'gnome-shell', 'extensions',
                                       UUID), recursive=True)
        self.assertEqual(len(found), 1, tree(self.tmp))
        self.assertEqual(tree(found[0]), FILES)
        # only the extension carries the tag
        self.assertEqual(tree(self.tmp), {os.path.relpath(os.path.join(found[0], f), self.tmp)
                                          for f in FILES})
        self.assert_schema(os.path.join(found[0], 'schemas'))

    def test_pack_and_install(self):
        out = os.path.join(self.tmp, 'out')
        os.makedirs(out)
        self.run_ok(['gnome-extensions', 'pack', EXT_SRC, '--extra-source=model.js',
                     '--extra-source=icons', '--schema=' + SCHEMA_XML,
                     '--podir=' + os.path.join(SRC, 'po'), '--out-dir=' + out])
        zip_path = os.path.join(out, UUID + '.shell-extension.zip')
        with zipfile.ZipFile(zip_path) as z:
            names = {n for n in z.namelist() if not n.endswith('/')}
        self.assertEqual(names, FILES | {'locale/pt_BR/LC_MESSAGES/banger.mo'})
        # gnome-extensions install puts it where the shell looks for the
        # user's extensions (no shell needed for that).
        env = dict(os.environ, HOME=self.tmp, XDG_DATA_HOME=os.path.join(self.tmp, 'data'),
                   DBUS_SESSION_BUS_ADDRESS='unix:path=' + os.path.join(self.tmp, 'nobus'))
        self.run_ok(['gnome-extensions', 'install', zip_path], env=env)
        dest = os.path.join(self.tmp, 'data', 'gnome-shell', 'extensions', UUID)
        self.assertEqual(tree(dest), FILES | {'locale/pt_BR/LC_MESSAGES/banger.mo'})
        for f in ('extension.js', 'model.js', 'prefs.js', 'metadata.json'):
            self.assertTrue(filecmp.cmp(os.path.join(dest, f), os.path.join(EXT_SRC, f),
                                        shallow=False), f)
        self.assert_schema(os.path.join(dest, 'schemas'))
        # the translation is compiled and holds the extension's strings
        mo = os.path.join(dest, 'locale', 'pt_BR', 'LC_MESSAGES', 'banger.mo')
        po = self.run_ok(['msgunfmt', mo]).stdout
        self.assertIn('msgid "Start bangerd"', po)
        self.assertIn('msgid "New Sandbox"', po)

    def test_strings_extracted(self):
        """xgettext finds the JS strings through po/POTFILES.in (the list
        tests/data/test_po.py checks pt_BR against)."""
        pot = os.path.join(self.tmp, 'banger.pot')
        self.run_ok(['xgettext', '--from-code=UTF-8', '--no-wrap', '--keyword=_',
                     '--keyword=ngettext:1,2',
                     '--files-from=po/POTFILES.in', '-o', pot], cwd=SRC)
        with open(pot) as f:
            text = f.read()
        msgids = set(re.findall(r'^msgid "(.*)"$', text, re.M))
        for msgid in ('Start bangerd', 'New Sandbox', 'Delete sandbox “%s”?',
                      'Show stopped sandboxes', 'Sandbox “%s” stopped unexpectedly',
                      'Show stopped sandboxes', 'Its disk and console log are removed. '
                      'A running sandbox is stopped first.'):
            self.assertIn(msgid, msgids)
        self.assertIn('msgid_plural "%d sandboxes running"', text)

    def test_prefs_keys_in_schema(self):
        """Every key prefs.js and extension.js use is in the schema, and
        every key of the schema has a row in the preferences window."""
        schema_keys = set()
        with open(os.path.join(EXT_SRC, SCHEMA_XML)) as f:
            schema_keys = set(re.findall(r'<key name="([a-z-]+)"', f.read()))
        with open(os.path.join(EXT_SRC, 'prefs.js')) as f:
            prefs = set(re.findall(r"(?:bind|switchRow\(settings,)\s*\(?'([a-z-]+)'", f.read()))
        with open(os.path.join(EXT_SRC, 'extension.js')) as f:
            ext = f.read()
        used = set(re.findall(r"get_(?:boolean|string|uint)\('([a-z-]+)'\)", ext))
        used |= set(re.findall(r"'changed::([a-z-]+)'", ext))
        self.assertEqual(prefs, schema_keys)
        self.assertEqual(used, schema_keys)

    def test_eslint_gnome_shell_rules(self):
        """eslint 8 with GNOME Shell 43's rules (lint/eslintrc.yml) passes on
        every file of the extension. eslint comes from the npm registry
        (package-lock.json pins it), installed once into the build tree."""
        lint = os.path.join(BUILD, 'gnome-shell-lint')
        stamp = os.path.join(lint, 'package-lock.json')
        if not (os.path.exists(os.path.join(lint, 'node_modules', '.bin', 'eslint')) and
                os.path.exists(stamp) and
                filecmp.cmp(stamp, os.path.join(LINT_DIR, 'package-lock.json'), shallow=False)):
            shutil.rmtree(lint, ignore_errors=True)
            os.makedirs(lint)
            for f in ('package.json', 'package-lock.json'):
                shutil.copy(os.path.join(LINT_DIR, f), lint)
            # npm's cache inside the build tree too: no dependence on $HOME
            # A download from the registry, not a timing: a dropped
            # connection is tried again (npm ci starts from a clean slate).
            argv = ['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error',
                    '--fetch-retries=5', '--cache', os.path.join(lint, '.npm-cache')]
            for attempt in range(3):
                r = subprocess.run(argv, cwd=lint, capture_output=True, text=True, timeout=600)
                if r.returncode == 0:
                    break
            self.assertEqual(r.returncode, 0, '%s:\n%s%s' % (' '.join(argv), r.stdout, r.stderr))
        env = dict(os.environ, ESLINT_USE_FLAT_CONFIG='false')
        js = sorted(glob.glob(os.path.join(EXT_SRC, '*.js')))
        self.assertEqual([os.path.basename(p) for p in js],
                         ['extension.js', 'model.js', 'prefs.js'])
        self.run_ok([os.path.join(lint, 'node_modules', '.bin', 'eslint'), '--no-eslintrc',
                     '--resolve-plugins-relative-to', lint,
                     '-c', os.path.join(LINT_DIR, 'eslintrc.yml'), '--max-warnings', '0'] + js,
                    env=env, timeout=300)


if __name__ == '__main__':
    unittest.main()
