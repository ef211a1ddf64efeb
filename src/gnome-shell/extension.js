// SPDX-License-Identifier: GPL-2.0-or-later
//
// banger's GNOME Shell extension: running sandboxes in the top bar.
//
// The indicator and its menu are a view of model.js (banger's objects on
// the session bus); nothing here polls or runs the CLI to learn state.
// Everything enable() creates is undone in disable(): signal connections go
// through _connect() and are counted, so the test suite can check that 50
// enable/disable cycles leave nothing behind (docs/gnome-shell.md).
'use strict';
/* exported init, debugConnections */

const {Clutter, Gio, GLib, GObject, St} = imports.gi;
const Gettext = imports.gettext;
const {vprintf} = imports.format;

const BoxPointer = imports.ui.boxpointer;
const ExtensionUtils = imports.misc.extensionUtils;
const Main = imports.ui.main;
const MessageTray = imports.ui.messageTray;
const ModalDialog = imports.ui.modalDialog;
const PanelMenu = imports.ui.panelMenu;
const PopupMenu = imports.ui.popupMenu;

const Me = ExtensionUtils.getCurrentExtension();
const Model = Me.imports.model;

const Domain = Gettext.domain('banger');
const _ = Domain.gettext;
const ngettext = Domain.ngettext;

// Signal connections made by this extension that are still connected;
// read by the enable/disable test through the shell's Eval.
var debugConnections = 0;

/**
 * A list of signal connections that are all undone at once.
 */
class Connections {
    constructor() {
        this._list = [];
    }

    connect(object, signal, callback) {
        this._list.push([object, object.connect(signal, callback)]);
        debugConnections++;
    }

    disconnectAll() {
        for (const [object, id] of this._list) {
            object.disconnect(id);
            debugConnections--;
        }
        this._list = [];
    }
}

/**
 * "1 h 5 min" since @startedAt (unix seconds).
 *
 * @param {number} startedAt when the VM started
 * @returns {string} its uptime, or '' if it has not started
 */
function formatUptime(startedAt) {
    if (!startedAt)
        return '';
    const secs = Math.max(0, Math.floor(Date.now() / 1000) - startedAt);
    if (secs < 60)
        return vprintf(_('%d s'), [secs]);
    const mins = Math.floor(secs / 60);
    if (mins < 60)
        return vprintf(_('%d min'), [mins]);
    return vprintf(_('%d h %d min'), [Math.floor(mins / 60), mins % 60]);
}

/**
 * The state of a VM in the user's words.
 *
 * @param {string} state the VM's State property
 * @returns {string} the translated state
 */
function stateLabel(state) {
    switch (state) {
    case 'created': return _('created');
    case 'starting': return _('starting');
    case 'running': return _('running');
    case 'stopping': return _('stopping');
    case 'stopped': return _('stopped');
    case 'suspending': return _('suspending');
    case 'suspended': return _('suspended');
    case 'resuming': return _('resuming');
    case 'error': return _('error');
    default: return state;
    }
}

/**
 * What a job does, in the user's words.
 *
 * @param {object} job a job from the model
 * @returns {string} e.g. "Pulling alpine:3"
 */
function jobTitle(job) {
    switch (job.operation) {
    case 'pull-image': return vprintf(_('Pulling image %s'), [job.target]);
    case 'build-image': return vprintf(_('Building image %s'), [job.target]);
    case 'promote-vm': return vprintf(_('Saving %s as an image'), [job.target]);
    case 'pull-kernel': return vprintf(_('Pulling kernel %s'), [job.target]);
    case 'update': return vprintf(_('Updating banger to %s'), [job.target]);
    default: return `${job.operation} ${job.target}`;
    }
}

/**
 * The progress of a job: percentage and bytes when known.
 *
 * @param {object} job a job from the model
 * @returns {string} e.g. "42 % · 3.1 MB of 7.4 MB"
 */
function jobProgress(job) {
    const parts = [];
    if (job.progress >= 0)
        parts.push(vprintf(_('%d %%'), [Math.floor(job.progress * 100)]));
    if (job.bytesTotal > 0) {
        parts.push(vprintf(_('%s of %s'),
            [GLib.format_size(job.bytesDone), GLib.format_size(job.bytesTotal)]));
    }
    if (job.message)
        parts.push(job.message);
    return parts.join(' · ');
}

const ConfirmDeleteDialog = GObject.registerClass(
class BangerConfirmDeleteDialog extends ModalDialog.ModalDialog {
    _init(name, onConfirm) {
        super._init({styleClass: 'banger-confirm-dialog'});
        const content = new St.BoxLayout({vertical: true, style_class: 'banger-dialog-content'});
        content.add_child(new St.Label({
            text: vprintf(_('Delete sandbox “%s”?'), [name]),
            style_class: 'banger-dialog-title',
        }));
        content.add_child(new St.Label({
            text: _('Its disk and console log are removed. A running sandbox is stopped first.'),
        }));
        this.contentLayout.add_child(content);
        this.addButton({label: _('Cancel'), action: () => this.close(), key: Clutter.KEY_Escape});
        this.addButton({
            label: _('Delete'),
            action: () => {
                this.close();
                onConfirm();
            },
        });
    }
});

const VMRow = GObject.registerClass(
class BangerVMRow extends PopupMenu.PopupSubMenuMenuItem {
    _init(indicator, vm) {
        super._init(vm.name, false);
        this._indicator = indicator;
        this.path = vm.path;
        this.add_style_class_name('banger-vm-row');
        // The label holds the name; state and details follow in a column.
        this.stateLabel = new St.Label({style_class: 'banger-vm-state', y_align: Clutter.ActorAlign.CENTER});
        this.detailsLabel = new St.Label({style_class: 'banger-vm-details', y_align: Clutter.ActorAlign.CENTER});
        this.insert_child_above(this.stateLabel, this.label);
        this.insert_child_above(this.detailsLabel, this.stateLabel);

        this.vmActions = {};
        const add = (key, label, callback) => {
            const item = this.menu.addAction(label, callback);
            this.vmActions[key] = item;
        };
        add('start', _('Start'), () => indicator.runAction(this.path, 'start'));
        add('stop', _('Stop'), () => indicator.runAction(this.path, 'stop'));
        add('restart', _('Restart'), () => indicator.runAction(this.path, 'restart'));
        add('suspend', _('Suspend'), () => indicator.runAction(this.path, 'suspend'));
        add('resume', _('Resume'), () => indicator.runAction(this.path, 'resume'));
        add('ssh', _('Copy SSH Command'), () => indicator.copySSH(this.path));
        add('terminal', _('Open Terminal'), () => indicator.openTerminal(this.path));
        add('log', _('Show Log'), () => indicator.showLog(this.path));
        add('delete', _('Delete…'), () => indicator.confirmDelete(this.path));
        this.update(vm);
    }

    update(vm) {
        this.vm = vm;
        this.label.text = vm.name;
        this.stateLabel.text = stateLabel(vm.state);
        const details = [vm.ipv4, vm.image];
        if (vm.state === 'running')
            details.push(formatUptime(vm.startedAt));
        if (vm.state === 'error' && vm.lastError)
            details.push(vm.lastError);
        this.detailsLabel.text = details.filter(d => d).join(' · ');
        for (const s of ['created', 'starting', 'running', 'stopping', 'stopped', 'suspending',
            'suspended', 'resuming', 'error'])
            this.remove_style_class_name(`banger-vm-${s}`);
        this.add_style_class_name(`banger-vm-${vm.state}`);
        const running = vm.state === 'running';
        const canStart = ['created', 'stopped', 'error'].includes(vm.state);
        this.vmActions.start.visible = canStart;
        // A suspended VM resumes; Stop discards its saved state (docs/suspend.md).
        this.vmActions.suspend.visible = running;
        this.vmActions.resume.visible = vm.state === 'suspended';
        this.vmActions.stop.visible = running || vm.state === 'suspended';
        this.vmActions.restart.visible = running;
        this.vmActions.ssh.visible = running;
        this.vmActions.terminal.visible = running;
        // The console log exists once the VM has been started.
        this.vmActions.log.visible = vm.state !== 'created';
    }
});

const JobRow = GObject.registerClass(
class BangerJobRow extends PopupMenu.PopupBaseMenuItem {
    _init(indicator, job) {
        super._init({activate: false, style_class: 'banger-job-row'});
        this.path = job.path;
        const box = new St.BoxLayout({vertical: true, x_expand: true});
        this.titleLabel = new St.Label({style_class: 'banger-job-title'});
        this.progressLabel = new St.Label({style_class: 'banger-job-progress'});
        box.add_child(this.titleLabel);
        box.add_child(this.progressLabel);
        this.add_child(box);
        this.cancelButton = new St.Button({
            style_class: 'button banger-job-cancel',
            label: _('Cancel'),
            y_align: Clutter.ActorAlign.CENTER,
        });
        this.cancelButton.connect('clicked', () => indicator.cancelJob(this.path));
        this.add_child(this.cancelButton);
        this.update(job);
    }

    update(job) {
        this.titleLabel.text = jobTitle(job);
        this.progressLabel.text = jobProgress(job);
    }
});

const Indicator = GObject.registerClass(
class BangerIndicator extends PanelMenu.Button {
    _init(extension) {
        super._init(0.0, _('Sandboxes'));
        this._extension = extension;
        this._model = extension.model;
        this._settings = extension.settings;
        this._connections = new Connections();
        this._vmRows = new Map();
        this._jobRows = new Map();
        // Texts of job rows as they were shown (tests read it: a loopback
        // pull may finish before anyone can look at the open menu).
        this.debugJobTexts = [];

        const box = new St.BoxLayout({style_class: 'panel-status-menu-box'});
        this._icon = new St.Icon({
            gicon: Gio.icon_new_for_string(`${Me.path}/icons/banger-symbolic.svg`),
            style_class: 'system-status-icon',
        });
        this._countLabel = new St.Label({
            style_class: 'banger-count',
            y_align: Clutter.ActorAlign.CENTER,
        });
        box.add_child(this._icon);
        box.add_child(this._countLabel);
        this.add_child(box);

        this._daemonSection = new PopupMenu.PopupMenuSection();
        this._daemonLabel = new PopupMenu.PopupMenuItem(_('bangerd is not running'),
            {reactive: false});
        this._startDaemonItem = new PopupMenu.PopupMenuItem(_('Start bangerd'));
        this._startDaemonItem.connect('activate', () => this._startDaemon());
        this._daemonSection.addMenuItem(this._daemonLabel);
        this._daemonSection.addMenuItem(this._startDaemonItem);
        this.menu.addMenuItem(this._daemonSection);

        this._vmSection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this._vmSection);
        this._emptyItem = new PopupMenu.PopupMenuItem(_('No sandboxes'), {reactive: false});
        this.menu.addMenuItem(this._emptyItem);

        this._jobSeparator = new PopupMenu.PopupSeparatorMenuItem(_('Jobs'));
        this.menu.addMenuItem(this._jobSeparator);
        this._jobSection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this._jobSection);

        this._newSeparator = new PopupMenu.PopupSeparatorMenuItem();
        this.menu.addMenuItem(this._newSeparator);
        this._newMenu = new PopupMenu.PopupSubMenuMenuItem(_('New Sandbox'), true);
        this._newMenu.icon.icon_name = 'list-add-symbolic';
        this.menu.addMenuItem(this._newMenu);
        this.menu.addAction(_('Preferences'), () => ExtensionUtils.openPrefs());

        const c = this._connections;
        const rebuild = () => this._rebuildVMs();
        c.connect(this._model, 'notify::available', () => this._sync());
        c.connect(this._model, 'reloaded', () => this._sync());
        c.connect(this._model, 'vm-added', rebuild);
        c.connect(this._model, 'vm-removed', rebuild);
        c.connect(this._model, 'vm-state-changed', (m, path, oldState, newState) => {
            this._rebuildVMs();
            this._onStateChanged(path, oldState, newState);
        });
        c.connect(this._model, 'vm-changed', (m, path) => this._updateVM(path));
        c.connect(this._model, 'job-added', () => this._rebuildJobs());
        c.connect(this._model, 'job-removed', () => this._rebuildJobs());
        c.connect(this._model, 'job-changed', (m, path) => this._updateJob(path));
        c.connect(this._model, 'job-completed', (m, path, success, message, seconds) =>
            this._onJobCompleted(path, success, message, seconds));
        c.connect(this._model, 'images-changed', () => this._rebuildImages());
        c.connect(this._settings, 'changed::show-stopped', rebuild);
        // Uptimes are refreshed when the menu opens, not by a timer.
        c.connect(this.menu, 'open-state-changed', (menu, open) => {
            if (open)
                this._refreshUptimes();
        });
        this._sync();
    }

    _onDestroy() {
        this._connections.disconnectAll();
        super._onDestroy();
    }

    _sync() {
        const available = this._model.available;
        this._daemonSection.actor.visible = !available;
        this._newSeparator.visible = available;
        this._newMenu.visible = available;
        this._rebuildVMs();
        this._rebuildJobs();
        this._rebuildImages();
    }

    _visibleVMs() {
        const showStopped = this._settings.get_boolean('show-stopped');
        return this._model.vms.filter(vm => showStopped ||
            Model.ACTIVE_STATES.includes(vm.state) || vm.state === 'error');
    }

    _rebuildVMs() {
        this._vmSection.removeAll();
        this._vmRows.clear();
        for (const vm of this._visibleVMs()) {
            const row = new VMRow(this, vm);
            this._vmRows.set(vm.path, row);
            this._vmSection.addMenuItem(row);
        }
        this._emptyItem.visible = this._model.available && this._vmRows.size === 0;
        this._updateIndicator();
    }

    _updateVM(path) {
        const vm = this._model.vm(path);
        const row = this._vmRows.get(path);
        if (vm && row)
            row.update(vm);
        this._updateIndicator();
    }

    _refreshUptimes() {
        for (const [path, row] of this._vmRows) {
            const vm = this._model.vm(path);
            if (vm)
                row.update(vm);
        }
    }

    // Count of running VMs; dimmed (not hidden) with none, so the menu —
    // and "New Sandbox" and "Start bangerd" in it — stays one click away.
    _updateIndicator() {
        const vms = this._model.vms;
        const running = vms.filter(vm => vm.state === 'running').length;
        const errors = vms.filter(vm => vm.state === 'error').length;
        this._countLabel.text = running > 0 ? String(running) : '';
        this._countLabel.visible = running > 0;
        const set = (cls, on) => on ? this.add_style_class_name(cls)
            : this.remove_style_class_name(cls);
        set('banger-idle', running === 0);
        set('banger-error', errors > 0);
        set('banger-offline', !this._model.available);
        this.accessible_name = vprintf(ngettext('%d sandbox running', '%d sandboxes running',
            running), [running]);
    }

    _rebuildJobs() {
        this._jobSection.removeAll();
        this._jobRows.clear();
        for (const job of this._model.jobs) {
            if (job.state !== 'running')
                continue;
            const row = new JobRow(this, job);
            this._jobRows.set(job.path, row);
            this._jobSection.addMenuItem(row);
            this._recordJob(row);
        }
        this._jobSeparator.visible = this._jobRows.size > 0;
    }

    _updateJob(path) {
        const job = this._model.job(path);
        const row = this._jobRows.get(path);
        if (!job)
            return;
        if (job.state !== 'running' || !row) {
            this._rebuildJobs();
            return;
        }
        row.update(job);
        this._recordJob(row);
    }

    _recordJob(row) {
        this.debugJobTexts.push(`${row.titleLabel.text} | ${row.progressLabel.text}`);
        if (this.debugJobTexts.length > 200)
            this.debugJobTexts.shift();
    }

    _rebuildImages() {
        const menu = this._newMenu.menu;
        menu.removeAll();
        const images = this._model.images;
        const def = this._model.defaultImage;
        if (def && !images.some(i => i.name === def)) {
            // The default image is built on first use; CreateVM takes it
            // when no image is named.
            menu.addAction(vprintf(_('%s (default)'), [def]), () => this.newSandbox(''));
        }
        for (const image of images) {
            const label = image.name === def ? vprintf(_('%s (default)'), [def]) : image.name;
            menu.addAction(label, () => this.newSandbox(image.name));
        }
    }

    // "Unexpected": a start or stop that failed (error), or a running VM
    // that became stopped without passing through "stopping" — what
    // bangerd reports when the guest powered off or its VMM died.
    _onStateChanged(path, oldState, newState) {
        const unexpected = newState === 'error' ||
            (oldState === 'running' && newState === 'stopped');
        if (!unexpected || !this._settings.get_boolean('notifications'))
            return;
        const vm = this._model.vm(path);
        if (!vm)
            return;
        this._extension.notify(vprintf(_('Sandbox “%s” stopped unexpectedly'), [vm.name]),
            vm.lastError || vprintf(_('Its console log may say why: banger vm logs %s'),
                [vm.name]), true);
    }

    _onJobCompleted(path, success, message, seconds) {
        const job = this._model.job(path);
        if (!this._settings.get_boolean('notifications') || !job)
            return;
        if (seconds < this._settings.get_uint('long-job-seconds'))
            return;
        const title = jobTitle(job);
        if (success)
            this._extension.notify(vprintf(_('Done: %s'), [title]), message, false);
        else
            this._extension.notify(vprintf(_('Failed: %s'), [title]), message, true);
    }

    async _run(promise) {
        try {
            await promise;
        } catch (e) {
            // Every call's error reaches the user with bangerd's message.
            if (!e.matches?.(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
                this._extension.notify(_('banger'), e.message, true);
        }
    }

    runAction(path, action) {
        const calls = {
            start: p => this._model.startVM(p),
            stop: p => this._model.stopVM(p),
            restart: p => this._model.restartVM(p),
            suspend: p => this._model.suspendVM(p),
            resume: p => this._model.resumeVM(p),
        };
        this._run(calls[action](path));
    }

    confirmDelete(path) {
        const vm = this._model.vm(path);
        if (!vm)
            return;
        this.confirmDialog?.destroy();
        this.confirmDialog = new ConfirmDeleteDialog(vm.name, () => {
            this._run(this._model.deleteVM(path));
        });
        this.confirmDialog.connect('destroy', () => {
            this.confirmDialog = null;
        });
        this.confirmDialog.open();
    }

    copySSH(path) {
        const vm = this._model.vm(path);
        if (!vm)
            return;
        St.Clipboard.get_default().set_text(St.ClipboardType.CLIPBOARD,
            `banger vm ssh ${vm.name}`);
    }

    openTerminal(path) {
        const vm = this._model.vm(path);
        if (vm)
            this._extension.launchInTerminal(['banger', 'vm', 'ssh', vm.name]);
    }

    showLog(path) {
        const vm = this._model.vm(path);
        if (vm)
            this._extension.launchInTerminal(['banger', 'vm', 'logs', '--follow', vm.name]);
    }

    cancelJob(path) {
        this._run(this._model.cancelJob(path));
    }

    newSandbox(image) {
        const name = Model.freeSandboxName(this._model.vms);
        const spec = {name};
        if (image)
            spec.image = image;
        this._run((async () => {
            const path = await this._model.createVM(spec);
            await this._model.startVM(path);
        })());
    }

    _startDaemon() {
        this._run(this._model.startDaemon());
    }

    /**
     * What the menu shows, for the tests (through the shell's Eval).
     *
     * @returns {object} indicator and rows as plain data
     */
    debugState() {
        return {
            count: this._countLabel.visible ? this._countLabel.text : '',
            styles: this.get_style_class_name(),
            daemonShown: this._daemonSection.actor.visible,
            rows: [...this._vmSection._getMenuItems()].map(r => ({
                name: r.label.text,
                state: r.stateLabel.text,
                details: r.detailsLabel.text,
                actions: Object.keys(r.vmActions).filter(k => r.vmActions[k].visible),
            })),
            jobs: [...this._jobRows.values()].map(r => ({
                title: r.titleLabel.text,
                progress: r.progressLabel.text,
            })),
            images: this._newMenu.menu._getMenuItems().map(i => i.label.text),
        };
    }
});

class Extension {
    constructor(uuid) {
        this._uuid = uuid;
        ExtensionUtils.initTranslations('banger');
    }

    enable() {
        this.debugNotifications = [];
        this.settings = ExtensionUtils.getSettings();
        this.model = new Model.Model();
        this._indicator = new Indicator(this);
        Main.panel.addToStatusArea(this._uuid, this._indicator);
    }

    disable() {
        this._indicator.confirmDialog?.destroy();
        // No transition of the menu (a fade-out after a choice) may outlive
        // the indicator: close it at once before destroying it.
        this._indicator.menu.close(BoxPointer.PopupAnimation.NONE);
        this._indicator.destroy();
        this._indicator = null;
        this.model.destroy();
        this.model = null;
        this._source?.destroy();
        this._source = null;
        this.settings = null;
    }

    /**
     * Shows a notification from banger (and records it for the tests).
     *
     * @param {string} title the headline
     * @param {string} body the details, e.g. bangerd's error message
     * @param {boolean} urgent errors stay until dismissed
     */
    notify(title, body, urgent) {
        // A call that fails after disable() must not bring a source back.
        if (!this.model)
            return;
        this.debugNotifications.push({title, body});
        if (!this._source) {
            this._source = new MessageTray.Source(_('Sandboxes'), 'computer-symbolic');
            this._source.connect('destroy', () => {
                this._source = null;
            });
            Main.messageTray.add(this._source);
        }
        const notification = new MessageTray.Notification(this._source, title, body);
        notification.setUrgency(urgent ? MessageTray.Urgency.HIGH : MessageTray.Urgency.NORMAL);
        notification.setTransient(!urgent);
        this._source.showNotification(notification);
    }

    /**
     * Runs @argv in a terminal: the one in the preferences, else the
     * user's default terminal as Gio finds it (no shell in between).
     *
     * @param {string[]} argv the command
     */
    launchInTerminal(argv) {
        try {
            const custom = this.settings.get_string('terminal-command').trim();
            if (custom) {
                const [, terminal] = GLib.shell_parse_argv(custom);
                // Gio.Subprocess reaps the child itself.
                Gio.Subprocess.new([...terminal, ...argv], Gio.SubprocessFlags.NONE);
            } else {
                const app = Gio.AppInfo.create_from_commandline(
                    argv.map(a => GLib.shell_quote(a)).join(' '), null,
                    Gio.AppInfoCreateFlags.NEEDS_TERMINAL);
                app.launch([], global.create_app_launch_context(0, -1));
            }
        } catch (e) {
            this.notify(_('Could not open a terminal'), e.message, true);
        }
    }
}

/**
 * @param {object} meta the extension's metadata
 * @returns {Extension} the extension's state object
 */
function init(meta) {
    return new Extension(meta.uuid);
}
