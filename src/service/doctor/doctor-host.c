#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "guest-agent.h"
#include "doctor-private.h"
#include "doctor-versions.h"
#include "validate.h"
#include "vmm-firecracker.h"
#include "vmm.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
/* Below this much free space a pull or a VM's first writes fail: one
 * layer of a distribution image or a VM's overlay growing. */
#define DISK_FAIL_BYTES (1ULL << 30)
#define DISK_WARN_BYTES (4ULL << 30)

/* stdout and stderr of `@program --version`, or NULL. */
static char *
program_version_output (const char *program)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE
                               | G_SUBPROCESS_FLAGS_STDIN_INHERIT,
                           NULL, program, "--version", NULL);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, NULL))
    return NULL;
  return g_steal_pointer (&out);
}

/* One program whose version must lie in [@min, @untested): "ok", "warn"
 * (untested, or its version cannot be read) or @too_old. Returns the
 * parsed version (NULL if none) through @version_out. */
static void
check_versioned (GVariantBuilder *b, const char *id, const char *what, const char *path,
                 const char *prefix, const char *min, const char *untested, const char *too_old,
                 const char *install_hint, char **version_out)
{
  g_autofree char *out = program_version_output (path);
  g_autofree char *version = banger_doctor_parse_version (out, prefix);

  if (version == NULL) {
    g_autofree char *first = out != NULL ? g_strndup (out, strcspn (out, "\n")) : NULL;
    banger_doctor_add (b, id, "warn", install_hint,
                       "%s: %s, version not readable from `--version` (%s); supported %s up to "
                       "below %s",
                       what, path, first != NULL && *first ? first : "no output", min, untested);
  } else if (banger_doctor_version_compare (version, min) < 0) {
    banger_doctor_add (b, id, too_old, install_hint,
                       "%s %s (%s) is older than the oldest supported, %s", what, version, path,
                       min);
  } else if (banger_doctor_version_compare (version, untested) >= 0) {
    g_autofree char *hint = g_strdup_printf (
        "untested with banger: if VMs misbehave, use %s %s–%s", what, min, untested);
    banger_doctor_add (b, id, "warn", hint, "%s %s (%s) is newer than banger was tested with "
                       "(below %s)", what, version, path, untested);
  } else {
    banger_doctor_add (b, id, "ok", NULL, "%s %s: %s (supported: %s up to below %s)", what,
                       version, path, min, untested);
  }
  if (version_out != NULL)
    *version_out = g_steal_pointer (&version);
}

static const char *
qemu_binary (void)
{
  /* The qemu driver's own rule (vmm-qemu.c). */
  const char *env = g_getenv ("BANGER_QEMU");
  return env && *env ? env : "qemu-system-x86_64";
}

static void
check_architecture (GVariantBuilder *b)
{
  struct utsname u;

  if (uname (&u) < 0) {
    banger_doctor_add (b, "architecture", "warn", "report this as a bug",
                       "cannot read the machine type: %s", g_strerror (errno));
    return;
  }
  /* Everything banger runs is x86_64: qemu-system-x86_64, linux/amd64
   * images, the static agent and the release tarballs. */
  if (g_str_equal (u.machine, "x86_64"))
    banger_doctor_add (b, "architecture", "ok", NULL, "x86_64 (Linux %s)", u.release);
  else
    banger_doctor_add (b, "architecture", "fail",
                       "banger runs on x86_64 hosts only (its images are linux/amd64 and its "
                       "guest agent an x86_64 binary); use an x86_64 machine",
                       "this host is %s, not x86_64", u.machine);
}

static void
check_devices (GVariantBuilder *b)
{
  struct stat st;
  int fd;

  if (stat ("/dev/kvm", &st) < 0 || !S_ISCHR (st.st_mode))
    banger_doctor_add (b, "kvm", "warn",
                       "enable virtualisation (VT-x/AMD-V) in the firmware and load kvm_intel "
                       "or kvm_amd; until then guests run under TCG",
                       "no /dev/kvm: guests run under QEMU's software emulation");
  else if ((fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
    int saved = errno;
    g_autofree char *hint = g_strdup_printf (
        "add yourself to the group owning /dev/kvm (`sudo usermod -aG kvm %s`) and log in again",
        g_get_user_name ());
    banger_doctor_add (b, "kvm", "warn", hint, "/dev/kvm exists but cannot be opened: %s",
                       g_strerror (saved));
  } else {
    close (fd);
    banger_doctor_add (b, "kvm", "ok", NULL,
                       "/dev/kvm opens read-write (whether KVM works: see accelerator)");
  }

  /* The helper (root) opens it to make taps; bangerd only needs it to
   * exist. */
  if (stat ("/dev/net/tun", &st) < 0 || !S_ISCHR (st.st_mode))
    banger_doctor_add (b, "tun", "warn",
                       "load the tun module (`sudo modprobe tun`, and list it in "
                       "/etc/modules-load.d/) so VMs get a network device",
                       "no /dev/net/tun: the helper cannot make taps, VMs start without network");
  else
    banger_doctor_add (b, "tun", "ok", NULL, "/dev/net/tun is there (the helper makes taps with it)");
}

static void
check_runtime (GVariantBuilder *b, GPtrArray *missing)
{
  g_autofree char *qemu = g_find_program_in_path (qemu_binary ());
  g_autofree char *qemu_img = g_find_program_in_path ("qemu-img");
  g_autofree char *fc = g_find_program_in_path (banger_vmm_firecracker_binary ());
  g_autofree char *jailer_conf = banger_helper_conf_string ("jail", "jailer");
  const char *jailer = jailer_conf != NULL ? jailer_conf : "/usr/bin/jailer";
  const char *drv = banger_vmm_default_driver ();
  g_autofree char *fc_version = NULL;

  if (qemu == NULL) {
    banger_doctor_add (b, "qemu", "fail", "install qemu-system-x86 (--no-install-recommends)",
                       "QEMU: %s not found on PATH", qemu_binary ());
    g_ptr_array_add (missing, g_strdup ("QEMU"));
  } else
    check_versioned (b, "qemu", "QEMU", qemu, "version ", BANGER_QEMU_MIN_VERSION,
                     BANGER_QEMU_UNTESTED_VERSION, "fail",
                     "install a supported qemu-system-x86 (Debian 12's 7.2 is tested)", NULL);

  if (qemu_img != NULL)
    banger_doctor_add (b, "qemu-img", "ok", NULL, "qemu-img (per-VM disk overlays): %s",
                       qemu_img);
  else {
    banger_doctor_add (b, "qemu-img", "fail", "install qemu-utils",
                       "qemu-img (per-VM disk overlays): qemu-img not found on PATH");
    g_ptr_array_add (missing, g_strdup ("qemu-img"));
  }

  /* Firecracker is optional; a version out of range only fails where it
   * is the driver VMs get by default. */
  if (fc == NULL)
    banger_doctor_add (b, "firecracker", "ok", NULL,
                       "Firecracker not installed; default driver: %s", drv);
  else
    check_versioned (b, "firecracker", "Firecracker", fc, "Firecracker ", BANGER_FC_MIN_VERSION,
                     BANGER_FC_UNTESTED_VERSION,
                     g_str_equal (drv, "firecracker") ? "fail" : "warn",
                     "install a supported Firecracker release (firecracker and jailer from the "
                     "same release), or use --driver qemu",
                     &fc_version);

  if (fc == NULL)
    banger_doctor_add (b, "jailer", "ok", NULL, "jailer not needed without Firecracker");
  else if (!g_file_test (jailer, G_FILE_TEST_IS_EXECUTABLE))
    banger_doctor_add (b, "jailer", "warn",
                       "install the jailer of the same Firecracker release, or name it with "
                       "[jail] jailer= in /etc/banger/helper.conf",
                       "no jailer at %s: Firecracker VMs run unjailed where the user may open "
                       "/dev/kvm",
                       jailer);
  else {
    g_autofree char *jailer_version = NULL;
    g_auto (GVariantBuilder) tmp;

    /* The jailer's own row, then the pairing with Firecracker. */
    g_variant_builder_init (&tmp, G_VARIANT_TYPE ("a(ssss)"));
    check_versioned (&tmp, "jailer", "jailer", jailer, "Jailer ", BANGER_FC_MIN_VERSION,
                     BANGER_FC_UNTESTED_VERSION, "warn",
                     "install the jailer of the same Firecracker release", &jailer_version);
    if (jailer_version != NULL && fc_version != NULL
        && banger_doctor_version_compare (jailer_version, fc_version) != 0) {
      banger_doctor_add (b, "jailer", "warn",
                         "install firecracker and jailer from the same release",
                         "jailer %s (%s) is not Firecracker's release (%s)", jailer_version,
                         jailer, fc_version);
    } else {
      g_autoptr (GVariant) rows = g_variant_ref_sink (g_variant_builder_end (&tmp));
      GVariantIter iter;
      GVariant *row;

      g_variant_iter_init (&iter, rows);
      while ((row = g_variant_iter_next_value (&iter)) != NULL) {
        g_variant_builder_add_value (b, row);
        g_variant_unref (row);
      }
    }
  }
}

static guint64
meminfo_kib (const char *key)
{
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    return 0;
  p = strstr (text, key);
  if (p == NULL)
    return 0;
  p += strlen (key);
  while (*p == ':' || *p == ' ')
    p++;
  return g_ascii_strtoull (p, NULL, 10);
}

static void
check_defaults (GVariantBuilder *b)
{
  guint cpus = g_get_num_processors ();
  guint64 mem_mib = meminfo_kib ("MemTotal") / 1024;
  g_autoptr (GString) problems = g_string_new (NULL);

  if (BANGER_VCPUS_DEFAULT > cpus)
    g_string_append_printf (problems, "%u default vCPUs but %u CPUs; ", BANGER_VCPUS_DEFAULT,
                            cpus);
  if (mem_mib != 0 && BANGER_MEMORY_MIB_DEFAULT > mem_mib / 2)
    g_string_append_printf (problems, "%u MiB default memory is over half of the host's %" G_GUINT64_FORMAT " MiB; ",
                            BANGER_MEMORY_MIB_DEFAULT, mem_mib);
  if (problems->len > 0) {
    g_string_truncate (problems, problems->len - 2);
    banger_doctor_add (b, "vm-defaults", "warn",
                       "give VMs less with --vcpus and --memory (banger vm create/run)",
                       "VM defaults: %s", problems->str);
  } else
    banger_doctor_add (b, "vm-defaults", "ok", NULL,
                       "VM defaults: %u vCPUs, %u MiB memory, %u MiB disk (host: %u CPUs, %" G_GUINT64_FORMAT " MiB)",
                       BANGER_VCPUS_DEFAULT, BANGER_MEMORY_MIB_DEFAULT, BANGER_DISK_MIB_DEFAULT, cpus,
                       mem_mib);
}

static void
check_space (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  const char *dirs[] = { f->data_dir, f->cache_dir };
  const char *status = "ok";
  g_autoptr (GString) msg = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++) {
    struct statvfs sv;
    guint64 free_bytes;

    if (dirs[i] == NULL || statvfs (dirs[i], &sv) < 0)
      continue;
    free_bytes = (guint64)sv.f_bavail * sv.f_frsize;
    g_string_append_printf (msg, "%s%s: %.1f GiB free", msg->len ? "; " : "", dirs[i],
                            free_bytes / GIB);
    if (free_bytes < DISK_FAIL_BYTES)
      status = "fail";
    else if (free_bytes < DISK_WARN_BYTES && g_str_equal (status, "ok"))
      status = "warn";
  }
  if (msg->len == 0)
    g_string_append (msg, "no data directory to measure yet");
  banger_doctor_add (b, "disk-space", status,
                     g_str_equal (status, "ok")
                         ? NULL
                         : "free space there: `banger vm prune`, `banger image cache prune`, "
                           "`banger image rm` of unused images (under 1 GiB fails, under 4 GiB "
                           "warns)",
                     "%s", msg->str);
}

/* What starting a VM with the default driver needs, beyond the rows above:
 * the VMM, its disk tool, the agent to put into the image, a writable VM
 * directory and the ssh key tool. */
static void
check_lifecycle (GVariantBuilder *b, const BangerDoctorFacts *f, GPtrArray *missing)
{
  const char *drv = banger_vmm_default_driver ();
  g_autofree char *vms = g_build_filename (f->data_dir, "vms", NULL);
  g_autofree char *keygen = g_find_program_in_path ("ssh-keygen");

  if (!g_file_test (banger_guest_agent_path (), G_FILE_TEST_IS_EXECUTABLE))
    g_ptr_array_add (missing, g_strdup ("the guest agent"));
  if (keygen == NULL)
    g_ptr_array_add (missing, g_strdup ("ssh-keygen"));
  if (access (g_file_test (vms, G_FILE_TEST_IS_DIR) ? vms : f->data_dir, W_OK) < 0)
    g_ptr_array_add (missing, g_strdup_printf ("a writable %s", vms));
  if (missing->len == 0)
    banger_doctor_add (b, "lifecycle", "ok", NULL,
                       "VMs can be created, started, stopped and deleted (driver %s; VMMs "
                       "outlive bangerd restarts)",
                       drv);
  else {
    g_ptr_array_add (missing, NULL);
    g_autofree char *list = g_strjoinv (", ", (char **)missing->pdata);
    banger_doctor_add (b, "lifecycle", "fail",
                       "install what is missing (the rows above name the packages) and make the "
                       "data directory writable",
                       "VMs cannot start (driver %s): missing %s", drv, list);
  }
}

void
banger_doctor_check_host (GVariantBuilder *b, const BangerDoctorFacts *f)
{
  g_autoptr (GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);

  check_devices (b);
  check_runtime (b, missing);
  check_lifecycle (b, f, missing);
  check_defaults (b);
  check_space (b, f);
}

void
banger_doctor_check_architecture (GVariantBuilder *b)
{
  check_architecture (b);
}
