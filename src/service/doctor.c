#define G_LOG_DOMAIN "banger-doctor"

#include "doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "boot-assets.h"
#include "kernel-file.h"
#include "vmm-firecracker.h"
#include "vmm.h"

void
banger_doctor_facts_free (BangerDoctorFacts *facts)
{
  if (facts == NULL)
    return;
  g_free (facts->data_dir);
  g_free (facts->default_image);
  g_free (facts->default_kernel);
  g_free (facts->dns_problem);
  g_free (facts);
}

static void add (GVariantBuilder *b, const char *id, const char *status, const char *hint,
                 const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static void
add (GVariantBuilder *b, const char *id, const char *status, const char *hint, const char *fmt, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, fmt);
  message = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_variant_builder_add (b, "(ssss)", id, status, message, hint ? hint : "");
}

static void
check_program (GVariantBuilder *b, const char *id, const char *program, const char *status_missing,
               const char *what, const char *hint)
{
  g_autofree char *path = g_find_program_in_path (program);

  if (path != NULL)
    add (b, id, "ok", NULL, "%s: %s", what, path);
  else
    add (b, id, status_missing, hint, "%s: %s not found on PATH", what, program);
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

GVariant *
banger_doctor_checks (const BangerDoctorFacts *f)
{
  GVariantBuilder b;
  const char *reason = NULL;
  const char *accel = banger_vmm_qemu_accel (&reason);
  g_autofree char *host_kernel = NULL;
  g_autofree char *host_release = NULL;
  const char *agent = banger_agent_binary_path ();

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssss)"));

  if (g_str_equal (accel, "kvm"))
    add (&b, "accelerator", "ok", NULL, "KVM works (a probe VM ran to its hlt)");
  else
    add (&b, "accelerator", "warn",
         "guests run under QEMU's TCG software emulation: boots take seconds, not milliseconds",
         "TCG: %s", reason ? reason : "KVM not usable");

  check_program (&b, "qemu", "qemu-system-x86_64", "fail", "QEMU",
                 "install qemu-system-x86 (--no-install-recommends)");
  check_program (&b, "qemu-img", "qemu-img", "fail", "qemu-img (per-VM disk overlays)",
                 "install qemu-utils");
  {
    const char *drv = banger_vmm_default_driver ();
    g_autofree char *fc = g_find_program_in_path (banger_vmm_firecracker_binary ());
    if (fc != NULL)
      add (&b, "firecracker", "ok", NULL, "Firecracker: %s; default driver: %s", fc, drv);
    else
      add (&b, "firecracker", "ok", NULL, "Firecracker not installed; default driver: %s", drv);
  }

  if (f->helper_available)
    add (&b, "helper", "ok", NULL, "bangerd-root answers on the system bus");
  else
    add (&b, "helper", "warn",
         "install banger's system parts (units, bus and polkit files) and start "
         "bangerd-root.service",
         "bangerd-root is not available: VMs start without a network device");

  /* The DNS responder: a taken port leaves bangerd running without it. */
  if (f->dns_running)
    add (&b, "dns", "ok", NULL, "DNS responder answers <name>.vm on 127.0.0.1:%u (UDP and TCP)",
         f->dns_port);
  else if (f->dns_port == 0)
    add (&b, "dns", "ok", NULL, "DNS responder is off: %s",
         f->dns_problem ? f->dns_problem : "disabled");
  else
    add (&b, "dns", "warn",
         "free the port, or choose another with [dns] port= in ~/.config/banger/config and "
         "restart bangerd",
         "DNS responder is off: %s", f->dns_problem ? f->dns_problem : "not started");

  add (&b, "store", "ok", NULL, "state in %s (schema version %d)", f->data_dir, f->schema_version);

  if (f->default_kernel_registered)
    add (&b, "default-kernel", "ok", NULL, "default kernel “%s” is registered", f->default_kernel);
  else if (banger_kernel_find_host ("/boot", "/lib/modules", &host_kernel, &host_release, NULL))
    add (&b, "default-kernel", "ok", NULL,
         "default kernel “%s” will be imported from %s on first use", f->default_kernel,
         host_kernel);
  else
    add (&b, "default-kernel", "fail", "install linux-image-cloud-amd64, or banger kernel import",
         "no default kernel “%s” and none on this host to import", f->default_kernel);

  if (f->default_image_registered)
    add (&b, "default-image", "ok", NULL, "default image “%s” is registered", f->default_image);
  else
    add (&b, "default-image", "ok", NULL, "default image “%s” will be built on first use",
         f->default_image);

  if (g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
    add (&b, "agent", "ok", NULL, "guest agent: %s", agent);
  else
    add (&b, "agent", "fail", "reinstall banger", "guest agent %s is missing", agent);

  if (g_file_test ("/bin/busybox", G_FILE_TEST_IS_EXECUTABLE))
    add (&b, "busybox", "ok", NULL, "busybox for the minimal image: /bin/busybox");
  else
    add (&b, "busybox", "warn", "install busybox-static",
         "no /bin/busybox: the minimal image cannot be built");
  check_program (&b, "debootstrap", "debootstrap", "warn", "debootstrap (the debian image)",
                 "install debootstrap");
  check_program (&b, "ssh", "ssh", "warn", "OpenSSH client (banger vm ssh)",
                 "install openssh-client");
  check_program (&b, "ssh-keygen", "ssh-keygen", "fail", "ssh-keygen (per-VM host keys)",
                 "install openssh-client");

  if (reflink_supported (f->data_dir))
    add (&b, "disk", "ok", NULL,
         "qemu VMs: qcow2 overlays; raw disks (firecracker): reflink copies in %s", f->data_dir);
  else
    add (&b, "disk", "ok", NULL,
         "qemu VMs: qcow2 overlays; raw disks (firecracker): no reflink in %s, so a "
         "dm-snapshot where device-mapper exists, else a sparse copy",
         f->data_dir);

  return g_variant_builder_end (&b);
}
