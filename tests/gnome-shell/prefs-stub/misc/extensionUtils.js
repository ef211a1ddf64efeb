// SPDX-License-Identifier: GPL-2.0-or-later
//
// Stands in for GNOME Shell's misc/extensionUtils.js when prefs-test.js
// loads the extension's prefs.js outside the Extensions app: the two calls
// prefs.js makes, done the way the real ones do them for an extension
// installed with its own compiled schema (schemas/ beside prefs.js).
'use strict';
/* exported getSettings, initTranslations */

const {Gio, GLib} = imports.gi;

/**
 * @returns {Gio.Settings} the extension's settings, from its own schemas/
 */
function getSettings() {
    const dir = GLib.getenv('BANGER_EXT_DIR');
    const source = Gio.SettingsSchemaSource.new_from_directory(`${dir}/schemas`,
        Gio.SettingsSchemaSource.get_default(), false);
    const schema = source.lookup('org.gnome.shell.extensions.banger', true);
    return new Gio.Settings({settings_schema: schema});
}

/**
 * Nothing to bind here: the test runs untranslated.
 */
function initTranslations() {
}
