#include "config.h"

#include "doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "guest-agent.h"
#include "doctor-private.h"
#include "doctor-ssh.h"
#include "kernel-file.h"
#include "protocol.h"
#include "doctor-versions.h"
#include "vmm-firecracker.h"
#include "vmm.h"

void
banger_doctor_facts_free (BangerDoctorFacts *facts)
{
  if (facts == NULL)
    return;
  g_free (facts->data_dir);
  g_free (facts->cache_dir);
  g_free (facts->db_path);
  g_free (facts->default_image);
  g_free (facts->default_kernel);
  g_free (facts->dns_problem);
  g_strfreev (facts->running_vms);
  g_strfreev (facts->running_agents);
  g_strfreev (facts->suspended_vms);
  g_strfreev (facts->suspended_states);
  g_clear_pointer (&facts->helper, banger_helper_client_free);
  g_free (facts);
}

void
banger_doctor_add (GVariantBuilder *b, const char *id, const char *status, const char *hint,
                   const char *fmt, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, fmt);
  message = g_strdup_vprintf (fmt, args);
  va_end (args);
  if (!g_str_equal (status, "ok") && (hint == NULL || *hint == '\0')) {
    g_warning ("doctor check %s is %s without a hint", id, status);
    hint = "see docs/cli.md, section Doctor";
  }
  g_variant_builder_add (b, "(ssss)", id, status, message, hint ? hint : "");
}

GDBusConnection *
banger_doctor_system_bus (const BangerDoctorFacts *f, GError **error)
{
  return banger_helper_client_dup_bus (f->helper, error);
}

static void
check_program (GVariantBuilder *b, const char *id, const char *program, const char *status_missing,
               const char *what, const char *hint)
{
  g_autofree char *path = g_find_program_in_path (program);

  if (path != NULL)
    banger_doctor_add (b, id, "ok", NULL, "%s: %s", what, path);
  else
    banger_doctor_add (b, id, status_missing, hint, "%s: %s not found on PATH", what, program);
}

/* Whether the data directory's file system can clone files (FICLONE), which
 * the firecracker driver uses for per-VM raw disks before falling back to a
 * dm-snapshot or a sparse copy. */
static gboolean
reflink_supported (const char *dir)
{
  g_autofree char *a = g_build_filename (dir, ".doctor-reflink-a", NULL);
  g_autofree char *b = g_build_filename (dir, ".doctor-reflink-b", NULL);
  int fa = open (a, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  int fb = open (b, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  gboolean ok = FALSE;

  if (fa >= 0 && fb >= 0 && write (fa, "banger", 6) == 6)
    ok = ioctl (fb, FICLONE, fa) == 0;
  if (fa >= 0)
    close (fa);
  if (fb >= 0)
    close (fb);
  g_unlink (a);
  g_unlink (b);
  return ok;
}

/* A file created, written, synced and removed next to @path: what a
 * read-only mount, a full disk or a directory bangerd may not write shows
 * as. bangerd's own long-open database descriptors can keep writing to a
 * file system remounted read-only, so only a fresh open tells. */
static gboolean
probe_write (const char *dir, GError **error)
{
  g_autofree char *probe = g_build_filename (dir, ".doctor-write-probe", NULL);
  char block[4096] = { 0 };
  int fd = open (probe, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  int saved;

  if (fd < 0) {
    saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot create a file in %s: %s",
                 dir, g_strerror (saved));
    return FALSE;
  }
  if (write (fd, block, sizeof block) != (ssize_t)sizeof block || fsync (fd) < 0) {
    saved = errno;
    close (fd);
    g_unlink (probe);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot write in %s: %s",
                 dir, g_strerror (saved));
    return FALSE;
  }
  close (fd);
  g_unlink (probe);
  return TRUE;
}

#define STORE_RECOVER_HINT                                                                         \
  "stop bangerd, keep a copy of banger.db, then rebuild it: `sqlite3 banger.db .recover | "       \
  "sqlite3 banger-new.db` and move banger-new.db into its place (or move banger.db away to "       \
  "start afresh: VM records are lost, their directories stay in vms/)"

/* The store on its own connection (this runs in a worker thread, and the
 * daemon's connection belongs to the main thread): PRAGMA quick_check reads
 * every page and checks the b-trees' structure (integrity_check also
 * compares indexes with tables, which costs a full scan per index: not
 * worth it on every doctor), then a write transaction and a probe file. */
static void
check_store (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  g_autoptr (GString) problems = g_string_new (NULL);
  g_autofree char *db_dir = NULL;
  g_autoptr (GError) error = NULL;
  guint n = 0;
  int rc;

  if (f->db_path == NULL || *f->db_path == '\0') {
    banger_doctor_add (b, "store", "ok", NULL, "state in %s (schema version %d, in memory)",
                       f->data_dir, f->schema_version);
    return;
  }
  db_dir = g_path_get_dirname (f->db_path);
  rc = sqlite3_open_v2 (f->db_path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    banger_doctor_add (b, "store", "fail", STORE_RECOVER_HINT, "cannot open the store %s: %s",
                       f->db_path, db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
    sqlite3_close (db);
    return;
  }
  sqlite3_busy_timeout (db, 5000);
  rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check(5)", -1, &stmt, NULL);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    if ((rc = sqlite3_step (stmt)) != SQLITE_ROW)
      break;
    const char *line = (const char *)sqlite3_column_text (stmt, 0);
    if (line != NULL && !g_str_equal (line, "ok")) {
      g_string_append_printf (problems, "%s%s", n++ ? "; " : "", line);
    }
  }
  if (rc != SQLITE_DONE && problems->len == 0)
    g_string_append (problems, sqlite3_errmsg (db));
  sqlite3_finalize (stmt);
  if (problems->len > 0) {
    banger_doctor_add (b, "store", "fail", STORE_RECOVER_HINT,
                       "the store %s in %s is damaged: %s", f->db_path, f->data_dir,
                       problems->str);
    sqlite3_close (db);
    return;
  }

  /* Writable: SQLite silently opens a file it may not write read-only, so
   * both that and the write lock are asked; the probe file covers the
   * directory (the WAL and its index are created there). */
  rc = sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  /* Busy for the whole timeout: bangerd itself is writing, which proves
   * the file writable as well as our lock would; the probe file below
   * still checks the directory. */
  if (rc == SQLITE_BUSY)
    rc = SQLITE_OK;
  else if (rc != SQLITE_OK || sqlite3_db_readonly (db, "main") == 1) {
    banger_doctor_add (b, "store", "fail",
                       "make the data directory writable for this user (a read-only mount, a full "
                       "disk, or files owned by another user), then restart bangerd",
                       "the store %s in %s is not writable: %s", f->db_path, f->data_dir,
                       rc != SQLITE_OK ? sqlite3_errmsg (db) : "opened read-only");
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close (db);
    return;
  }
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (db);
  if (!probe_write (db_dir, &error)) {
    banger_doctor_add (b, "store", "fail",
                       "make the data directory writable for this user (a read-only mount, a full "
                       "disk, or files owned by another user), then restart bangerd",
                       "the store in %s is not writable: %s", f->data_dir, error->message);
    return;
  }
  banger_doctor_add (b, "store", "ok", NULL,
                     "state in %s (schema version %d): integrity checked, writable", f->data_dir,
                     f->schema_version);
}

/* Suspended VMs (docs/suspend.md): what their saved states take on disk,
 * and a warning for one whose state is gone (a start cannot resume it). */
void
banger_doctor_check_suspended (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  guint64 bytes = 0;
  guint total = 0, broken = 0;

  for (guint i = 0; f->suspended_vms != NULL && f->suspended_vms[i] != NULL; i++) {
    const char *name = f->suspended_vms[i];
    const char *dir = f->suspended_states[i];
    g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
    const char *entry;

    total++;
    while (d != NULL && (entry = g_dir_read_name (d)) != NULL) {
      g_autofree char *path = g_build_filename (dir, entry, NULL);
      GStatBuf st;
      if (g_stat (path, &st) == 0)
        bytes += (guint64)st.st_blocks * 512;
    }
    if (!banger_vmm_state_complete (dir)) {
      g_autofree char *id = g_strdup_printf ("vm-suspended:%s", name);
      g_autofree char *hint = g_strdup_printf ("`banger vm stop %s` discards what is left; a "
                                               "start then boots it afresh (its disk is kept)",
                                               name);
      broken++;
      banger_doctor_add (b, id, "warn", hint,
                         "VM “%s” is suspended, but its saved state %s is missing", name, dir);
    }
  }
  if (broken == 0)
    banger_doctor_add (b, "vm-suspended", "ok", NULL,
                       "%u suspended VM(s), their saved states %.1f MiB on disk", total,
                       bytes / (1024.0 * 1024.0));
  else
    banger_doctor_add (b, "vm-suspended", "warn", "see the vm-suspended:NAME rows",
                       "%u of %u suspended VM(s) cannot resume", broken, total);
}

void
banger_doctor_check_agents (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  const char *agent = banger_guest_agent_path ();
  guint old = 0, total = 0;

  if (g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
    banger_doctor_add (b, "agent", "ok", NULL, "guest agent: %s (protocol %d)", agent,
                       BNGR_PROTOCOL_VERSION);
  else
    banger_doctor_add (b, "agent", "fail", "reinstall banger", "guest agent %s is missing", agent);

  /* An agent older than this bangerd still works within the protocol's
   * compatibility rule (docs/agent-protocol.md, Versioning), but misses
   * what newer releases fixed: one warning per VM, which a restart of the
   * VM from a rebuilt image cures. */
  for (guint i = 0; f->running_vms != NULL && f->running_vms[i] != NULL; i++) {
    const char *name = f->running_vms[i];
    const char *version = f->running_agents[i];
    g_autofree char *id = g_strdup_printf ("vm-agent:%s", name);
    g_autofree char *hint = NULL;

    total++;
    if (version != NULL && *version != '\0'
        && banger_doctor_version_compare (version, PACKAGE_VERSION) >= 0)
      continue;
    old++;
    hint = g_strdup_printf ("the VM keeps working; to get the new agent, rebuild its image "
                            "(banger image build, or pull it again) and recreate the VM, or "
                            "`banger vm promote` what you need first; `banger vm restart %s` "
                            "alone keeps the agent of its disk",
                            name);
    banger_doctor_add (b, id, "warn", hint,
                       "VM “%s” runs guest agent %s, older than bangerd %s", name,
                       version != NULL && *version != '\0' ? version : "(unknown)",
                       PACKAGE_VERSION);
  }
  if (old == 0)
    banger_doctor_add (b, "vm-agents", "ok", NULL,
                       "%u running VM(s), every guest agent current (%s)", total, PACKAGE_VERSION);
  else
    banger_doctor_add (b, "vm-agents", "warn",
                       "see the vm-agent:NAME rows; such VMs start, stop and exec as before",
                       "%u of %u running VM(s) run an older guest agent", old, total);
}

/* Who holds UDP 127.0.0.1:@port (or the wildcard address, which takes the
 * port too): "pid N (comm)", "uid N" when that process is another user's,
 * or NULL. Read from /proc/net/udp and the owners' /proc/PID/fd links. */
static char *
udp_port_owner (guint port, pid_t *pid_out)
{
  g_autofree char *table = NULL;
  g_auto (GStrv) lines = NULL;
  g_autofree char *inode = NULL;
  guint uid = 0;
  g_autoptr (GDir) proc = NULL;
  const char *name;

  *pid_out = 0;
  if (!g_file_get_contents ("/proc/net/udp", &table, NULL, NULL))
    return NULL;
  lines = g_strsplit (table, "\n", -1);
  for (guint i = 1; lines[i] != NULL && inode == NULL; i++) {
    g_auto (GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
    g_autoptr (GPtrArray) cols = g_ptr_array_new ();
    g_autofree char *want_lo = g_strdup_printf ("0100007F:%04X", port);
    g_autofree char *want_any = g_strdup_printf ("00000000:%04X", port);

    for (guint j = 0; f[j] != NULL; j++)
      if (*f[j] != '\0')
        g_ptr_array_add (cols, f[j]);
    if (cols->len < 10)
      continue;
    if (g_str_equal (cols->pdata[1], want_lo) || g_str_equal (cols->pdata[1], want_any)) {
      inode = g_strdup_printf ("socket:[%s]", (char *)cols->pdata[9]);
      uid = (guint)g_ascii_strtoull (cols->pdata[7], NULL, 10);
    }
  }
  if (inode == NULL)
    return NULL;
  proc = g_dir_open ("/proc", 0, NULL);
  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL) {
    g_autofree char *fd_dir = NULL;
    g_autoptr (GDir) fds = NULL;
    const char *fd;

    if (!g_ascii_isdigit (name[0]))
      continue;
    fd_dir = g_build_filename ("/proc", name, "fd", NULL);
    fds = g_dir_open (fd_dir, 0, NULL);
    while (fds != NULL && (fd = g_dir_read_name (fds)) != NULL) {
      g_autofree char *link_path = g_build_filename (fd_dir, fd, NULL);
      g_autofree char *target = g_file_read_link (link_path, NULL);

      if (g_strcmp0 (target, inode) == 0) {
        g_autofree char *comm_path = g_build_filename ("/proc", name, "comm", NULL);
        g_autofree char *comm = NULL;

        *pid_out = (pid_t)g_ascii_strtoll (name, NULL, 10);
        if (g_file_get_contents (comm_path, &comm, NULL, NULL))
          g_strstrip (comm);
        return g_strdup_printf ("pid %s (%s)", name, comm != NULL ? comm : "?");
      }
    }
  }
  return g_strdup_printf ("a process of uid %u", uid);
}

GVariant *
banger_doctor_checks (const BangerDoctorFacts *f)
{
  GVariantBuilder b;
  const char *reason = NULL;
  const char *accel = banger_vmm_qemu_accel (&reason);
  g_autofree char *host_kernel = NULL;
  g_autofree char *host_release = NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssss)"));

  /* Installation first (architecture, versions, helper), then the store,
   * then what VMs need, then the network, then the system files. */
  banger_doctor_check_install (&b, f);
  check_store (&b, f);

  if (g_str_equal (accel, "kvm"))
    banger_doctor_add (&b, "accelerator", "ok", NULL, "KVM works (a probe VM ran to its hlt)");
  else
    banger_doctor_add (
        &b, "accelerator", "warn",
        "guests run under QEMU's TCG software emulation: boots take seconds, not milliseconds",
        "TCG: %s", reason ? reason : "KVM not usable");
  banger_doctor_check_host (&b, f);

  if (f->default_kernel_registered)
    banger_doctor_add (&b, "default-kernel", "ok", NULL, "default kernel “%s” is registered",
                       f->default_kernel);
  else if (banger_kernel_find_host ("/boot", "/lib/modules", &host_kernel, &host_release, NULL))
    banger_doctor_add (&b, "default-kernel", "ok", NULL,
                       "default kernel “%s” will be imported from %s on first use",
                       f->default_kernel, host_kernel);
  else
    banger_doctor_add (&b, "default-kernel", "fail",
                       "install linux-image-cloud-amd64, or banger kernel import",
                       "no default kernel “%s” and none on this host to import",
                       f->default_kernel);

  if (f->default_image_registered)
    banger_doctor_add (&b, "default-image", "ok", NULL, "default image “%s” is registered",
                       f->default_image);
  else
    banger_doctor_add (&b, "default-image", "ok", NULL,
                       "default image “%s” will be built on first use", f->default_image);

  banger_doctor_check_agents (&b, f);
  banger_doctor_check_suspended (&b, f);

  if (g_file_test ("/bin/busybox", G_FILE_TEST_IS_EXECUTABLE))
    banger_doctor_add (&b, "busybox", "ok", NULL, "busybox for the minimal image: /bin/busybox");
  else
    banger_doctor_add (&b, "busybox", "warn", "install busybox-static",
                       "no /bin/busybox: the minimal image cannot be built");
  check_program (&b, "debootstrap", "debootstrap", "warn", "debootstrap (the debian image)",
                 "install debootstrap");
  check_program (&b, "ssh", "ssh", "warn", "OpenSSH client (banger vm ssh)",
                 "install openssh-client");
  check_program (&b, "ssh-keygen", "ssh-keygen", "fail", "ssh-keygen (per-VM host keys)",
                 "install openssh-client");
  banger_doctor_check_ssh_shortcut (&b);

  if (reflink_supported (f->data_dir))
    banger_doctor_add (&b, "disk", "ok", NULL,
                       "qemu VMs: qcow2 overlays; raw disks (firecracker): reflink copies in %s",
                       f->data_dir);
  else
    banger_doctor_add (&b, "disk", "ok", NULL,
                       "qemu VMs: qcow2 overlays; raw disks (firecracker): no reflink in %s, so a "
                       "dm-snapshot where device-mapper exists, else a sparse copy",
                       f->data_dir);

  /* The DNS responder: a taken port leaves bangerd running without it;
   * the port's owner is named either way (bangerd itself, or who took it). */
  if (f->dns_port != 0) {
    pid_t owner_pid = 0;
    g_autofree char *owner = udp_port_owner (f->dns_port, &owner_pid);

    if (f->dns_running && owner_pid == getpid ())
      banger_doctor_add (&b, "dns", "ok", NULL,
                         "DNS responder answers <name>.vm on 127.0.0.1:%u (UDP and TCP; the "
                         "port is bangerd's, pid %d)",
                         f->dns_port, (int)owner_pid);
    else if (f->dns_running)
      banger_doctor_add (&b, "dns", "ok", NULL,
                         "DNS responder answers <name>.vm on 127.0.0.1:%u (UDP and TCP)",
                         f->dns_port);
    else
      banger_doctor_add (&b, "dns", "warn",
                         "free the port, or choose another with [dns] port= in "
                         "~/.config/banger/config and restart bangerd",
                         "DNS responder is off: %s%s%s", f->dns_problem ? f->dns_problem : "not started",
                         owner != NULL ? "; the port is held by " : "", owner != NULL ? owner : "");
  } else
    banger_doctor_add (&b, "dns", "ok", NULL, "DNS responder is off: %s",
                       f->dns_problem ? f->dns_problem : "disabled");
  banger_doctor_check_network (&b, f);

  return g_variant_builder_end (&b);
}
