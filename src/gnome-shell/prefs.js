// SPDX-License-Identifier: GPL-2.0-or-later
//
// Preferences of banger's GNOME Shell extension (GTK 4 and libadwaita, as
// the Extensions app of GNOME 43 expects). Every value lives in the
// extension's own GSettings schema (schemas/), so the shell picks a change
// up at once through the settings' changed signals.
'use strict';
/* exported init, fillPreferencesWindow */

const {Adw, Gio, Gtk} = imports.gi;

const ExtensionUtils = imports.misc.extensionUtils;
const Gettext = imports.gettext;

const _ = Gettext.domain('banger').gettext;

/**
 * Called once before the window is filled: binds the gettext domain to the
 * extension's locale directory (packed zip) or the system one (meson).
 */
function init() {
    ExtensionUtils.initTranslations('banger');
}

/**
 * A row with a switch bound to a boolean key.
 *
 * @param {Gio.Settings} settings the extension's settings
 * @param {string} key the key
 * @param {string} title the row's title
 * @param {string} subtitle what it does
 * @returns {Adw.ActionRow} the row
 */
function switchRow(settings, key, title, subtitle) {
    const row = new Adw.ActionRow({title, subtitle});
    const toggle = new Gtk.Switch({valign: Gtk.Align.CENTER});
    settings.bind(key, toggle, 'active', Gio.SettingsBindFlags.DEFAULT);
    row.add_suffix(toggle);
    row.activatable_widget = toggle;
    return row;
}

/**
 * Fills the preferences window the Extensions app opens.
 *
 * @param {Adw.PreferencesWindow} window the window
 */
function fillPreferencesWindow(window) {
    const settings = ExtensionUtils.getSettings();
    const page = new Adw.PreferencesPage();

    const menu = new Adw.PreferencesGroup({title: _('Menu')});
    menu.add(switchRow(settings, 'show-stopped', _('Show stopped sandboxes'),
        _('Sandboxes in error are always shown')));
    page.add(menu);

    const terminal = new Adw.PreferencesGroup({title: _('Terminal')});
    const termRow = new Adw.ActionRow({
        title: _('Terminal command'),
        subtitle: _('The banger command is appended, e.g. “kgx --”; empty for the default terminal'),
    });
    const entry = new Gtk.Entry({valign: Gtk.Align.CENTER, hexpand: true});
    settings.bind('terminal-command', entry, 'text', Gio.SettingsBindFlags.DEFAULT);
    termRow.add_suffix(entry);
    terminal.add(termRow);
    page.add(terminal);

    const notes = new Adw.PreferencesGroup({title: _('Notifications')});
    notes.add(switchRow(settings, 'notifications', _('Notifications'),
        _('When a sandbox stops unexpectedly and when a long job ends')));
    const longRow = new Adw.ActionRow({
        title: _('Long jobs'),
        subtitle: _('Seconds a job must run to be announced when it ends'),
    });
    const spin = Gtk.SpinButton.new_with_range(0, 86400, 1);
    spin.valign = Gtk.Align.CENTER;
    settings.bind('long-job-seconds', spin, 'value', Gio.SettingsBindFlags.DEFAULT);
    longRow.add_suffix(spin);
    notes.add(longRow);
    page.add(notes);

    window.add(page);
}
