// SPDX-License-Identifier: GPL-2.0-or-later
//
// The extension's model (src/gnome-shell/model.js) under plain gjs, against
// the real bangerd on a private session bus (started by test_model.py).
// Usage: gjs -I SRC/src/gnome-shell model-test.js CASE
// Exits 0 when the case passed; prints what it saw otherwise.
//
// Every wait is on an event (a model signal, a D-Bus reply), bounded by a
// generous timeout; nothing sleeps.
'use strict';

const {Gio, GLib} = imports.gi;
const System = imports.system;
const ModelModule = imports.model;

const TIMEOUT_S = 120;
const BOOT_TIMEOUT_S = 400;
const conn = Gio.DBus.session;

/**
 * Waits until @pred() is true, re-checking it after every signal of @model.
 *
 * @param {ModelModule.Model} model the model
 * @param {Function} pred the condition
 * @param {string} what what is awaited, for the failure message
 * @param {number} timeoutS seconds
 * @returns {Promise} resolved once pred() holds
 */
function waitModel(model, pred, what, timeoutS = TIMEOUT_S) {
    return new Promise((resolve, reject) => {
        if (pred()) {
            resolve();
            return;
        }
        const signals = ['vm-added', 'vm-removed', 'vm-changed', 'job-added', 'job-removed',
            'job-changed', 'job-completed', 'images-changed', 'reloaded', 'notify::available'];
        let ids = [];
        let timer = 0;
        const done = () => {
            ids.forEach(id => model.disconnect(id));
            ids = [];
            GLib.source_remove(timer);
        };
        for (const s of signals) {
            ids.push(model.connect(s, () => {
                if (pred()) {
                    done();
                    resolve();
                }
            }));
        }
        timer = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, timeoutS, () => {
            timer = 0;
            ids.forEach(id => model.disconnect(id));
            reject(new Error(`timed out after ${timeoutS} s waiting for ${what}; vms: ${
                JSON.stringify(model.vms)}, jobs: ${JSON.stringify(model.jobs)}`));
            return GLib.SOURCE_REMOVE;
        });
    });
}

function assert(cond, message) {
    if (!cond)
        throw new Error(`assertion failed: ${message}`);
}

function assertEq(a, b, message) {
    if (JSON.stringify(a) !== JSON.stringify(b))
        throw new Error(`${message}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
}

function call(path, iface, method, params, timeoutMs = 60000) {
    return new Promise((resolve, reject) => {
        conn.call(ModelModule.BUS_NAME, path, iface, method, params, null,
            Gio.DBusCallFlags.NONE, timeoutMs, null, (c, res) => {
                try {
                    resolve(c.call_finish(res).deepUnpack());
                } catch (e) {
                    reject(e);
                }
            });
    });
}

async function createVM(name) {
    const [path] = await call(ModelModule.MANAGER_PATH, ModelModule.MANAGER_IFACE, 'CreateVM',
        new GLib.Variant('(a{sv})', [{name: GLib.Variant.new_string(name)}]));
    return path;
}

function daemonPid(model) {
    const reply = conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
        'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
        new GLib.Variant('(s)', [model.owner]), null, Gio.DBusCallFlags.NONE, -1, null);
    return reply.deepUnpack()[0];
}

// Sends @signal to bangerd (argv, no shell) and waits for kill to exit.
async function killDaemon(model, signal) {
    const pid = daemonPid(model);
    const proc = Gio.Subprocess.new(['kill', `-${signal}`, String(pid)], Gio.SubprocessFlags.NONE);
    await new Promise((resolve, reject) => proc.wait_check_async(null, (p, res) => {
        try {
            p.wait_check_finish(res);
            resolve();
        } catch (e) {
            reject(e);
        }
    }));
    return pid;
}

async function newModel() {
    const model = new ModelModule.Model();
    // The first answer from the bus says whether bangerd runs.
    await waitModel(model, () => model.available || model._generation > 0, 'the name watch');
    return model;
}

const cases = {
    // bangerd is not running: the model says so, and D-Bus activation
    // through the model brings it (and its objects) up.
    async test_not_running_then_activated() {
        const model = await newModel();
        assert(!model.available, 'bangerd should not be running yet');
        assertEq(model.vms, [], 'no VMs while bangerd is not running');
        await model.startDaemon();
        await waitModel(model, () => model.available, 'bangerd activated');
        assert(model.defaultImage !== '', 'Manager properties are loaded');
        model.destroy();
    },

    // VMs appear, change and disappear within the main-loop turn that
    // delivers bangerd's signal.
    async test_vm_added_and_removed() {
        await call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'StartServiceByName',
            new GLib.Variant('(su)', [ModelModule.BUS_NAME, 0])).catch(() => null);
        const model = await newModel();
        await waitModel(model, () => model.available, 'bangerd');
        const added = [];
        const removed = [];
        model.connect('vm-added', (m, p) => added.push(p));
        model.connect('vm-removed', (m, p) => removed.push(p));
        // bangerd emits InterfacesAdded before it replies to CreateVM, and a
        // connection delivers messages in order: when the reply is here the
        // model must already have the VM, with no second look at the bus.
        const path = await createVM('alpha');
        assertEq(added, [path], 'vm-added before the CreateVM reply');
        const vm = model.vm(path);
        assertEq([vm.name, vm.state], ['alpha', 'created'], 'the new VM');
        const path2 = await createVM('beta');
        assertEq(model.vms.map(v => v.name), ['alpha', 'beta'], 'two VMs');
        await call(path, ModelModule.VM_IFACE, 'Delete', new GLib.Variant('(a{sv})', [{}]));
        assertEq(removed, [path], 'vm-removed before the Delete reply');
        assertEq(model.vms.map(v => v.name), ['beta'], 'one VM left');
        await call(path2, ModelModule.VM_IFACE, 'Delete', new GLib.Variant('(a{sv})', [{}]));
        assertEq(model.vms, [], 'no VM left');
        model.destroy();
        assertEq(ModelModule.debugCounters, {subscriptions: 0, watches: 0, models: 0},
            'destroy() leaves no subscription');
    },

    // Changes made while the model loads (between and around its two
    // calls) are all in it afterwards: none is lost, none is doubled. The
    // CreateVM calls are what activates bangerd, so its asynchronous
    // creations overlap the model's GetManagedObjects and GetAll.
    async test_changes_while_loading() {
        let total = 0;
        for (let round = 0; round < 5; round++) {
            // eslint-disable-next-line no-await-in-loop
            const model = await newModel();
            assert(!model.available, 'bangerd is not running at the start of a round');
            const names = [...Array(6).keys()].map(i => `r${round}-${i}`);
            total += names.length;
            // eslint-disable-next-line no-await-in-loop
            await Promise.all(names.map(n => createVM(n)));
            // eslint-disable-next-line no-await-in-loop
            await waitModel(model, () => model.available && model.vms.length === total,
                `round ${round}: all ${total} VMs`);
            const all = model.vms.map(v => v.name);
            assertEq(all.length, new Set(all).size, 'no VM twice');
            // eslint-disable-next-line no-await-in-loop
            await killDaemon(model, 'TERM');
            // eslint-disable-next-line no-await-in-loop
            await waitModel(model, () => !model.available, 'bangerd gone');
            model.destroy();
        }
    },

    // A real guest: created → starting → running → stopping → stopped,
    // each state in the model by the time anyone else hears of it.
    async test_state_changes_real_guest() {
        await call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'StartServiceByName',
            new GLib.Variant('(su)', [ModelModule.BUS_NAME, 0])).catch(() => null);
        const model = await newModel();
        await waitModel(model, () => model.available, 'bangerd');
        const path = await createVM('guest');
        const states = [];
        const lagging = [];
        model.connect('vm-state-changed', (m, p, oldState, newState) => {
            if (p === path)
                states.push(newState);
        });
        // A second subscriber, made after the model's: GDBus runs both for
        // the same message in subscription order, so the model must already
        // show what this one is told.
        const sub = conn.signal_subscribe(ModelModule.BUS_NAME,
            'org.freedesktop.DBus.Properties', 'PropertiesChanged', path, null,
            Gio.DBusSignalFlags.NONE, (c, s, p, i, n, params) => {
                const [, changed] = params.recursiveUnpack();
                if ('State' in changed && model.vm(path)?.state !== changed.State)
                    lagging.push([changed.State, model.vm(path)?.state]);
            });
        await call(path, ModelModule.VM_IFACE, 'Start', new GLib.Variant('(a{sv})', [{}]),
            BOOT_TIMEOUT_S * 1000);
        await waitModel(model, () => model.vm(path).state === 'running', 'running');
        assertEq(model.runningCount, 1, 'one VM running');
        assert(model.vm(path).startedAt > 0, 'StartedAt set');
        await call(path, ModelModule.VM_IFACE, 'Stop', new GLib.Variant('(u)', [30]), 120000);
        await waitModel(model, () => model.vm(path).state === 'stopped', 'stopped');
        conn.signal_unsubscribe(sub);
        assertEq(states, ['starting', 'running', 'stopping', 'stopped'], 'state sequence');
        assertEq(lagging, [], 'the model lagged behind a PropertiesChanged');
        assertEq(model.runningCount, 0, 'none running');
        model.destroy();
    },

    // A job's progress, its Completed signal and its removal.
    async test_job_progress() {
        await call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'StartServiceByName',
            new GLib.Variant('(su)', [ModelModule.BUS_NAME, 0])).catch(() => null);
        const model = await newModel();
        await waitModel(model, () => model.available, 'bangerd');
        const progress = [];
        const completed = [];
        model.connect('job-changed', (m, p) => progress.push(model.job(p).progress));
        model.connect('job-completed', (m, p, success, message, seconds) =>
            completed.push([p, success, seconds >= 0]));
        const [jobPath] = await call(ModelModule.MANAGER_PATH, ModelModule.MANAGER_IFACE,
            'BuildImage', new GLib.Variant('(sa{sv})', ['minimal',
                {name: GLib.Variant.new_string('tiny')}]));
        const job = model.job(jobPath);
        assert(job !== null, 'the job is in the model when BuildImage returns');
        assertEq([job.operation, job.target], ['build-image', 'minimal'], 'job identity');
        await waitModel(model, () => completed.length > 0, 'Completed', 300);
        assertEq(completed, [[jobPath, true, true]], 'Completed(success)');
        // The job may still be exported for a while after Completed.
        if (model.job(jobPath))
            assertEq(model.job(jobPath).state, 'succeeded', 'final job state');
        assert(progress.length > 0, 'progress was reported');
        for (let i = 1; i < progress.length; i++)
            assert(progress[i] >= progress[i - 1] || progress[i] < 0, `progress monotonic: ${progress}`);
        await waitModel(model, () => model.images.some(i => i.name === 'tiny'), 'the image');
        model.destroy();
    },

    // bangerd killed (TERM, then KILL): the model empties and says it is
    // unavailable; activated again, it reloads by itself.
    async test_daemon_killed_and_restarted() {
        await call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'StartServiceByName',
            new GLib.Variant('(su)', [ModelModule.BUS_NAME, 0])).catch(() => null);
        const model = await newModel();
        await waitModel(model, () => model.available, 'bangerd');
        await createVM('survivor');
        for (const signal of ['TERM', 'KILL']) {
            const oldOwner = model.owner;
            await killDaemon(model, signal);
            await waitModel(model, () => !model.available, `unavailable after SIG${signal}`);
            assertEq(model.vms, [], 'no VMs while bangerd is gone');
            // Anyone's call activates it again (here: the model's own
            // "start bangerd", what the indicator offers).
            await model.startDaemon();
            await waitModel(model, () => model.available && model.vms.length === 1,
                `reloaded after SIG${signal}`);
            assert(model.owner !== oldOwner, 'a new bangerd');
            assertEq(model.vms.map(v => v.name), ['survivor'], 'the VM is back');
        }
        // A change after the restart still reaches the model.
        const path = await createVM('after');
        assert(model.vm(path) !== null, 'new VM after restart');
        model.destroy();
    },
};

const name = ARGV[0];
if (!(name in cases)) {
    printerr(`unknown case ${name}; cases: ${Object.keys(cases).join(' ')}`);
    System.exit(2);
}
const loop = new GLib.MainLoop(null, false);
let status = 1;
cases[name]().then(() => {
    print(`${name}: ok`);
    status = 0;
}).catch(e => {
    printerr(`${name}: FAILED: ${e.message}\n${e.stack}`);
}).finally(() => loop.quit());
loop.run();
System.exit(status);
