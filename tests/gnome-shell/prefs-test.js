// SPDX-License-Identifier: GPL-2.0-or-later
//
// The extension's preferences window (src/gnome-shell/prefs.js) under gjs,
// GTK 4 and libadwaita, on the Wayland display of the headless GNOME Shell
// that test_shell.py started. prefs.js gets its settings through
// prefs-stub/misc/extensionUtils.js (the Extensions app of GNOME 43 is not
// installed here). Protocol on stdout/stdin, one line each:
//   → "ready <json>"  the window is mapped; <json> lists its rows
//   ← "toggle"        flip the first switch (show-stopped)
//   → "toggled <json>" the settings' values afterwards
//   ← "quit"
'use strict';

imports.gi.versions.Gtk = '4.0';
imports.gi.versions.Adw = '1';
const {Adw, Gio, GLib, Gtk} = imports.gi;
const System = imports.system;

imports.searchPath.unshift(GLib.getenv('BANGER_PREFS_STUB'));
imports.searchPath.unshift(GLib.getenv('BANGER_EXT_DIR'));
const Prefs = imports.prefs;

function widgets(root, type) {
    const out = [];
    for (let w = root.get_first_child(); w; w = w.get_next_sibling()) {
        if (w instanceof type)
            out.push(w);
        out.push(...widgets(w, type));
    }
    return out;
}

function values(settings) {
    const v = {};
    for (const key of settings.settings_schema.list_keys())
        v[key] = settings.get_value(key).recursiveUnpack();
    return v;
}

Adw.init();
Prefs.init();
const loop = new GLib.MainLoop(null, false);
const win = new Adw.PreferencesWindow({default_width: 600, default_height: 560});
Prefs.fillPreferencesWindow(win);
const settings = imports.misc.extensionUtils.getSettings();
const stdin = new Gio.DataInputStream({
    base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
});

function readCommand() {
    stdin.read_line_async(GLib.PRIORITY_DEFAULT, null, (s, res) => {
        const [line] = s.read_line_finish_utf8(res);
        if (line === 'toggle') {
            const [first] = widgets(win, Gtk.Switch);
            first.active = !first.active;
            print(`toggled ${JSON.stringify(values(settings))}`);
            readCommand();
        } else {
            loop.quit();
        }
    });
}

win.connect('map', () => {
    // the first frame: answer from an idle, once the window is laid out
    GLib.idle_add(GLib.PRIORITY_LOW, () => {
        const rows = widgets(win, Adw.ActionRow).map(r => r.title);
        print(`ready ${JSON.stringify({
            rows,
            switches: widgets(win, Gtk.Switch).map(s => s.active),
            entries: widgets(win, Gtk.Entry).filter(e => !(e instanceof Gtk.SpinButton))
                .map(e => e.text),
            spins: widgets(win, Gtk.SpinButton).map(s => s.value),
            settings: values(settings),
        })}`);
        readCommand();
        return GLib.SOURCE_REMOVE;
    });
});
win.present();
loop.run();
win.destroy();
System.exit(0);
