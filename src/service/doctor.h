#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* `banger doctor`: what this host can do, as (id, status, message, hint)
 * rows with status "ok", "warn" or "fail". The facts only the daemon's main
 * thread knows are gathered first; the checks themselves (programs on PATH,
 * the KVM probe, reflink support) may block for a couple of seconds and run
 * in a worker thread. */
typedef struct {
  gboolean helper_available;
  char *data_dir;
  int schema_version;
  char *default_image;
  gboolean default_image_registered;
  char *default_kernel;
  gboolean default_kernel_registered;
  guint dns_port; /* 0: disabled */
  gboolean dns_running;
  char *dns_problem; /* why it is not running */
} BangerDoctorFacts;

void banger_doctor_facts_free (BangerDoctorFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerDoctorFacts, banger_doctor_facts_free)

/* The rows, as a floating a(ssss) GVariant. */
GVariant *banger_doctor_checks (const BangerDoctorFacts *facts);

G_END_DECLS
