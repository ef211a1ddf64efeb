// SPDX-License-Identifier: GPL-2.0-or-later
//
// banger's state on the session bus, as seen by the GNOME Shell extension.
//
// This module imports nothing from the shell (no St, Clutter or imports.ui):
// it is tested under plain gjs against a real bangerd (tests/gnome-shell).
// It is an ObjectManager client written on the connection itself rather
// than a Gio.DBusObjectManagerClient: that client only drops its match rules
// when it is finalized, i.e. whenever gjs' garbage collector gets to it,
// while an extension must leave nothing behind the moment disable() returns.
// Here every subscription and the name watch are undone in destroy().
//
// How it follows bangerd (docs/gnome-shell.md, "Model"):
// - the name org.banger.Manager is watched without auto-starting it;
// - when it gets an owner, GetManagedObjects fills the model; signals from
//   the owner (InterfacesAdded/Removed, PropertiesChanged, Job.Completed)
//   then change it within the main-loop turn that delivers them;
// - when the owner goes away every object is dropped, and a new owner
//   (bangerd restarted) is loaded again, with no polling anywhere.
'use strict';
/* exported BUS_NAME, MANAGER_PATH, MANAGER_IFACE, VM_IFACE, JOB_IFACE, IMAGE_IFACE,
   ACTIVE_STATES, debugCounters, compareVMs, Model, freeSandboxName */

const {Gio, GLib, GObject} = imports.gi;

var BUS_NAME = 'org.banger.Manager';
var MANAGER_PATH = '/org/banger/Manager';
var MANAGER_IFACE = 'org.banger.Manager';
var VM_IFACE = 'org.banger.VM';
var JOB_IFACE = 'org.banger.Job';
var IMAGE_IFACE = 'org.banger.Image';
const OM_IFACE = 'org.freedesktop.DBus.ObjectManager';
const PROPS_IFACE = 'org.freedesktop.DBus.Properties';

// States in which a VM has (or is about to have, or just had) a VMM.
var ACTIVE_STATES = ['starting', 'running', 'stopping', 'suspending', 'resuming'];

// Live D-Bus subscriptions, name watches and model instances of this module,
// across all instances: the extension's enable/disable test reads them to
// prove that disable() leaves nothing behind.
var debugCounters = {subscriptions: 0, watches: 0, models: 0};

/**
 * Orders VMs for the menu: running (and starting/stopping) first, then those
 * in error, then the rest; by name within a group.
 *
 * @param {object} a a VM as returned by Model.vms
 * @param {object} b another one
 * @returns {number} the sort order
 */
function compareVMs(a, b) {
    const rank = vm => {
        if (ACTIVE_STATES.includes(vm.state))
            return 0;
        return vm.state === 'error' ? 1 : 2;
    };
    return rank(a) - rank(b) || a.name.localeCompare(b.name);
}

/**
 * Turns a D-Bus error into the daemon's own message (without the
 * "GDBus.Error:org.banger.Error.X: " prefix), keeping the error name.
 *
 * @param {Error} error what a call threw
 * @returns {Error} an Error whose message is bangerd's message
 */
function cleanError(error) {
    // A cancelled call (the model was destroyed) stays what it is, so that
    // callers can tell it from a failure and stay silent.
    if (!(error instanceof GLib.Error) ||
        error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
        return error;
    const remote = Gio.DBusError.get_remote_error(error);
    Gio.DBusError.strip_remote_error(error);
    const clean = new Error(error.message);
    clean.dbusName = remote;
    return clean;
}

var Model = GObject.registerClass({
    GTypeName: 'BangerShellModel',
    Properties: {
        // TRUE while org.banger.Manager has an owner and its objects are loaded.
        'available': GObject.ParamSpec.boolean('available', 'available', 'bangerd is running',
            GObject.ParamFlags.READABLE, false),
    },
    Signals: {
        'vm-added': {param_types: [GObject.TYPE_STRING]},
        'vm-removed': {param_types: [GObject.TYPE_STRING]},
        // any property of a VM; state changes also emit vm-state-changed
        'vm-changed': {param_types: [GObject.TYPE_STRING]},
        // path, old state, new state
        'vm-state-changed': {
            param_types: [GObject.TYPE_STRING, GObject.TYPE_STRING, GObject.TYPE_STRING],
        },
        'job-added': {param_types: [GObject.TYPE_STRING]},
        'job-removed': {param_types: [GObject.TYPE_STRING]},
        'job-changed': {param_types: [GObject.TYPE_STRING]},
        // path, success, message, seconds the job was seen running
        'job-completed': {
            param_types: [GObject.TYPE_STRING, GObject.TYPE_BOOLEAN, GObject.TYPE_STRING,
                GObject.TYPE_DOUBLE],
        },
        'images-changed': {},
        // bangerd appeared (objects loaded) or vanished
        'reloaded': {},
    },
}, class BangerModel extends GObject.Object {
    /**
     * @param {Gio.DBusConnection} [connection] the session bus by default
     */
    _init(connection = null) {
        super._init();
        this._connection = connection ?? Gio.DBus.session;
        this._objects = new Map(); // path → Map(interface → {prop: value})
        this._jobSeen = new Map(); // job path → monotonic µs when first seen
        this._owner = null;
        this._available = false;
        this._objectsLoaded = false;
        this._managerProps = null;
        this._generation = 0;
        this._subscriptions = [];
        this._watch = 0;
        this._cancellable = new Gio.Cancellable();
        this._destroyed = false;
        debugCounters.models++;

        // Signals are subscribed before the name is watched: whatever the
        // daemon sends after its GetManagedObjects reply reaches us.
        this._subscribe(OM_IFACE, 'InterfacesAdded', MANAGER_PATH,
            this._onInterfacesAdded.bind(this));
        this._subscribe(OM_IFACE, 'InterfacesRemoved', MANAGER_PATH,
            this._onInterfacesRemoved.bind(this));
        this._subscribe(PROPS_IFACE, 'PropertiesChanged', null,
            this._onPropertiesChanged.bind(this));
        this._subscribe(JOB_IFACE, 'Completed', null, this._onJobCompleted.bind(this));
        this._watch = Gio.bus_watch_name_on_connection(this._connection, BUS_NAME,
            Gio.BusNameWatcherFlags.NONE, this._onAppeared.bind(this),
            this._onVanished.bind(this));
        debugCounters.watches++;
    }

    get available() {
        return this._available;
    }

    /** @returns {string|null} the unique name of the running bangerd */
    get owner() {
        return this._owner;
    }

    /**
     * Ends every subscription and the name watch, and cancels calls in
     * flight; the model is empty and inert afterwards.
     */
    destroy() {
        if (this._destroyed)
            return;
        this._destroyed = true;
        this._cancellable.cancel();
        for (const id of this._subscriptions) {
            this._connection.signal_unsubscribe(id);
            debugCounters.subscriptions--;
        }
        this._subscriptions = [];
        if (this._watch) {
            Gio.bus_unwatch_name(this._watch);
            this._watch = 0;
            debugCounters.watches--;
        }
        this._objects.clear();
        this._jobSeen.clear();
        this._managerProps = null;
        debugCounters.models--;
    }

    _subscribe(iface, member, path, handler) {
        const id = this._connection.signal_subscribe(BUS_NAME, iface, member, path, null,
            Gio.DBusSignalFlags.NONE,
            (conn, sender, objectPath, ifaceName, signalName, params) => {
                // Only the owner we load from: a stale sender (a bangerd
                // being replaced) must not touch the new one's objects.
                // Before the GetManagedObjects reply nothing applies: the
                // reply was made later and already holds what they say.
                if (this._destroyed || sender !== this._owner || !this._objectsLoaded)
                    return;
                if (objectPath !== MANAGER_PATH && !objectPath.startsWith(`${MANAGER_PATH}/`))
                    return;
                handler(objectPath, params);
            });
        this._subscriptions.push(id);
        debugCounters.subscriptions++;
    }

    _onAppeared(conn, name, owner) {
        if (this._destroyed)
            return;
        // (GDBus reports a change of owner as vanished + appeared; this
        // only guards the model against an appeared without the other.)
        if (this._owner !== null)
            this._onVanished();
        this._owner = owner;
        const generation = ++this._generation;
        // Each reply is applied in the very callback that delivers it, so
        // the model follows the order in which bangerd sent its messages: a
        // signal that arrives after a reply applies on top of it. (A
        // signal between the two replies must not be lost: applying both
        // only once the second arrived would drop it.) The manager's own
        // properties are not among its managed objects, hence GetAll.
        this._callOwner(conn, OM_IFACE, 'GetManagedObjects', null, generation,
            ([objects]) => this._loadObjects(objects));
        this._callOwner(conn, PROPS_IFACE, 'GetAll', new GLib.Variant('(s)', [MANAGER_IFACE]),
            generation, ([props]) => {
                this._managerProps = props;
                this.emit('images-changed'); // DefaultImage is part of the picker
                this._maybeAvailable();
            });
    }

    // A call on the manager object of the unique name that appeared, never
    // auto-starting anything; @onReply gets the unpacked reply unless the
    // owner has changed meanwhile (then the next owner's calls count).
    _callOwner(conn, iface, method, params, generation, onReply) {
        conn.call(this._owner, MANAGER_PATH, iface, method, params, null,
            Gio.DBusCallFlags.NO_AUTO_START, -1, this._cancellable, (c, res) => {
                let reply;
                try {
                    reply = c.call_finish(res).recursiveUnpack();
                } catch (e) {
                    // Cancelled: destroyed. Otherwise bangerd went away
                    // meanwhile, and the name watch says so next.
                    if (!e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
                        log(`banger: ${method} failed: ${e.message}`);
                    return;
                }
                if (this._destroyed || generation !== this._generation)
                    return;
                onReply(reply);
            });
    }

    _maybeAvailable() {
        if (this._available || !this._objectsLoaded || !this._managerProps)
            return;
        this._available = true;
        this.notify('available');
        this.emit('reloaded');
    }

    _onVanished() {
        if (this._destroyed)
            return;
        this._generation++;
        this._owner = null;
        const wasAvailable = this._available;
        this._clear();
        if (wasAvailable) {
            this._available = false;
            this.notify('available');
        }
        this.emit('reloaded');
    }

    _clear() {
        this._objectsLoaded = false;
        this._managerProps = null;
        for (const [path, ifaces] of [...this._objects]) {
            this._objects.delete(path);
            this._emitRemoved(path, [...ifaces.keys()]);
        }
        this._jobSeen.clear();
    }

    _loadObjects(objects) {
        for (const [path, ifaces] of [...this._objects]) {
            this._objects.delete(path);
            this._emitRemoved(path, [...ifaces.keys()]);
        }
        for (const [path, ifaces] of Object.entries(objects))
            this._addInterfaces(path, ifaces);
        this._objectsLoaded = true;
        this._maybeAvailable();
    }

    _addInterfaces(path, ifaces) {
        let object = this._objects.get(path);
        if (!object) {
            object = new Map();
            this._objects.set(path, object);
        }
        for (const [iface, props] of Object.entries(ifaces)) {
            const isNew = !object.has(iface);
            object.set(iface, Object.assign(object.get(iface) ?? {}, props));
            if (!isNew)
                continue;
            if (iface === VM_IFACE) {
                this.emit('vm-added', path);
            } else if (iface === JOB_IFACE) {
                this._jobSeen.set(path, GLib.get_monotonic_time());
                this.emit('job-added', path);
            } else if (iface === IMAGE_IFACE) {
                this.emit('images-changed');
            }
        }
    }

    _emitRemoved(path, ifaces) {
        for (const iface of ifaces) {
            if (iface === VM_IFACE)
                this.emit('vm-removed', path);
            else if (iface === JOB_IFACE)
                this.emit('job-removed', path);
            else if (iface === IMAGE_IFACE)
                this.emit('images-changed');
        }
    }

    _onInterfacesAdded(_path, params) {
        const [path, ifaces] = params.recursiveUnpack();
        this._addInterfaces(path, ifaces);
    }

    _onInterfacesRemoved(_path, params) {
        const [path, ifaces] = params.deepUnpack();
        const object = this._objects.get(path);
        if (!object)
            return;
        const gone = ifaces.filter(i => object.delete(i));
        if (object.size === 0)
            this._objects.delete(path);
        if (gone.includes(JOB_IFACE))
            this._jobSeen.delete(path);
        this._emitRemoved(path, gone);
    }

    _onPropertiesChanged(path, params) {
        const [iface, changed] = params.recursiveUnpack();
        if (path === MANAGER_PATH) {
            // Before the GetAll reply, that reply (newer) holds the change.
            if (iface === MANAGER_IFACE && this._managerProps) {
                Object.assign(this._managerProps, changed);
                this.emit('images-changed');
            }
            return;
        }
        const props = this._objects.get(path)?.get(iface);
        // Unknown objects: their InterfacesAdded (or the GetManagedObjects
        // reply, which is newer than this signal) carries their properties.
        if (!props)
            return;
        const oldState = props.State;
        Object.assign(props, changed);
        if (iface === VM_IFACE) {
            this.emit('vm-changed', path);
            if ('State' in changed && changed.State !== oldState)
                this.emit('vm-state-changed', path, oldState ?? '', changed.State);
        } else if (iface === JOB_IFACE) {
            this.emit('job-changed', path);
        } else if (iface === IMAGE_IFACE) {
            this.emit('images-changed');
        }
    }

    _onJobCompleted(path, params) {
        const [success, message] = params.deepUnpack();
        const seen = this._jobSeen.get(path) ?? GLib.get_monotonic_time();
        const seconds = (GLib.get_monotonic_time() - seen) / 1e6;
        this.emit('job-completed', path, success, message, seconds);
    }

    _byInterface(iface) {
        const out = [];
        for (const [path, ifaces] of this._objects) {
            const props = ifaces.get(iface);
            if (props)
                out.push([path, props]);
        }
        return out;
    }

    /**
     * @param {string} path a VM's object path
     * @returns {object|null} the VM: path plus its properties in camel case
     */
    vm(path) {
        const p = this._objects.get(path)?.get(VM_IFACE);
        if (!p)
            return null;
        return {
            path,
            name: p.Name ?? '',
            id: p.Id ?? '',
            state: p.State ?? '',
            image: p.Image ?? '',
            ipv4: p.IPv4 ?? '',
            startedAt: Number(p.StartedAt ?? 0),
            lastError: p.LastError ?? '',
        };
    }

    /** @returns {object[]} every VM, running first (compareVMs) */
    get vms() {
        return this._byInterface(VM_IFACE).map(([path]) => this.vm(path)).sort(compareVMs);
    }

    /** @returns {number} how many VMs are running */
    get runningCount() {
        return this.vms.filter(vm => vm.state === 'running').length;
    }

    /**
     * @param {string} path a job's object path
     * @returns {object|null} the job
     */
    job(path) {
        const p = this._objects.get(path)?.get(JOB_IFACE);
        if (!p)
            return null;
        return {
            path,
            operation: p.Operation ?? '',
            target: p.Target ?? '',
            progress: p.Progress ?? -1,
            bytesDone: Number(p.BytesDone ?? 0),
            bytesTotal: Number(p.BytesTotal ?? 0),
            state: p.State ?? '',
            message: p.Message ?? '',
        };
    }

    /** @returns {object[]} every job bangerd still exports, oldest first */
    get jobs() {
        const num = path => Number(path.split('/').pop()) || 0;
        return this._byInterface(JOB_IFACE).map(([path]) => this.job(path))
            .sort((a, b) => num(a.path) - num(b.path));
    }

    /** @returns {object[]} the registered images, by name */
    get images() {
        return this._byInterface(IMAGE_IFACE)
            .map(([path, p]) => ({path, name: p.Name ?? '', source: p.Source ?? ''}))
            .sort((a, b) => a.name.localeCompare(b.name));
    }

    /** @returns {string} the image CreateVM uses when none is named */
    get defaultImage() {
        return this._managerProps?.DefaultImage ?? '';
    }

    /**
     * Calls a method of bangerd.
     *
     * @param {string} path object path
     * @param {string} iface interface
     * @param {string} method method name
     * @param {GLib.Variant|null} params the arguments tuple
     * @param {number} timeoutMs -1 for the default
     * @returns {Promise<Array>} the unpacked reply; rejects with an Error
     *   whose message is bangerd's (cleanError)
     */
    call(path, iface, method, params = null, timeoutMs = -1) {
        return new Promise((resolve, reject) => {
            this._connection.call(BUS_NAME, path, iface, method, params, null,
                Gio.DBusCallFlags.NONE, timeoutMs, this._cancellable, (c, res) => {
                    try {
                        resolve(c.call_finish(res).deepUnpack());
                    } catch (e) {
                        reject(cleanError(e));
                    }
                });
        });
    }

    /**
     * Starts bangerd through D-Bus activation (its .service file).
     *
     * @returns {Promise<Array>} the StartServiceByName reply
     */
    startDaemon() {
        return new Promise((resolve, reject) => {
            this._connection.call('org.freedesktop.DBus', '/org/freedesktop/DBus',
                'org.freedesktop.DBus', 'StartServiceByName',
                new GLib.Variant('(su)', [BUS_NAME, 0]), null, Gio.DBusCallFlags.NONE, -1,
                this._cancellable, (c, res) => {
                    try {
                        resolve(c.call_finish(res).deepUnpack());
                    } catch (e) {
                        reject(cleanError(e));
                    }
                });
        });
    }

    startVM(path) {
        return this.call(path, VM_IFACE, 'Start', new GLib.Variant('(a{sv})', [{}]), 300000);
    }

    // 0: bangerd's default grace period for the guest to power off.
    stopVM(path) {
        return this.call(path, VM_IFACE, 'Stop', new GLib.Variant('(u)', [0]), 120000);
    }

    // Saving a big guest's memory takes a while (docs/suspend.md).
    suspendVM(path) {
        return this.call(path, VM_IFACE, 'Suspend', null, 600000);
    }

    resumeVM(path) {
        return this.call(path, VM_IFACE, 'Resume', new GLib.Variant('(a{sv})', [{}]), 300000);
    }

    restartVM(path) {
        return this.call(path, VM_IFACE, 'Restart', new GLib.Variant('(a{sv})', [{}]), 300000);
    }

    // force: the menu asks for confirmation first, and a running VM is
    // deleted the way `banger vm rm --force` would.
    deleteVM(path) {
        return this.call(path, VM_IFACE, 'Delete',
            new GLib.Variant('(a{sv})', [{force: GLib.Variant.new_boolean(true)}]), 120000);
    }

    /**
     * @param {object} spec name (s) and optionally image (s)
     * @returns {Promise<string>} the new VM's path
     */
    async createVM(spec) {
        const v = {};
        for (const [k, val] of Object.entries(spec))
            v[k] = GLib.Variant.new_string(val);
        const [path] = await this.call(MANAGER_PATH, MANAGER_IFACE, 'CreateVM',
            new GLib.Variant('(a{sv})', [v]));
        return path;
    }

    cancelJob(path) {
        return this.call(path, JOB_IFACE, 'Cancel');
    }
});

/**
 * The first name "sandbox-N" no VM has.
 *
 * @param {object[]} vms the model's VMs
 * @returns {string} a free VM name
 */
function freeSandboxName(vms) {
    const taken = new Set(vms.map(vm => vm.name));
    let n = 1;
    while (taken.has(`sandbox-${n}`))
        n++;
    return `sandbox-${n}`;
}
