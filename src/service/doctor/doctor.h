#pragma once

#include <gio/gio.h>

#include "helper-client.h"

G_BEGIN_DECLS

/* `banger doctor`: what this host can do, as (id, status, message, hint)
 * rows with status "ok", "warn", "fail" or "skip" (not applicable here, or
 * not readable by bangerd; the message says which). Every row that is not
 * "ok" carries a hint saying what to do. Row ids are stable: `banger update`
 * compares the rows before and after an update by id (docs/cli.md lists
 * them). The facts only the daemon's main thread knows are gathered first;
 * the checks themselves (programs run for their versions, the KVM probe,
 * the store's integrity check, bus calls to the helper, systemd and
 * resolved, the firewall) may block for seconds and run in a worker
 * thread. */
typedef struct {
  BangerHelperClient *helper; /* the engine's: its system-bus connection */
  gboolean helper_available;
  char *data_dir;
  char *cache_dir;
  char *db_path; /* the store's file, as SQLite opened it */
  int schema_version;
  char *default_image;
  gboolean default_image_registered;
  char *default_kernel;
  gboolean default_kernel_registered;
  guint dns_port; /* 0: disabled */
  gboolean dns_running;
  char *dns_problem; /* why it is not running */
  /* Running VMs: names and the agent version each reported at its handshake
   * (same length, NULL-terminated). */
  char **running_vms;
  char **running_agents;
  /* Suspended VMs: names and the directories of their saved states (same
   * length, NULL-terminated). */
  char **suspended_vms;
  char **suspended_states;
} BangerDoctorFacts;

void banger_doctor_facts_free (BangerDoctorFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerDoctorFacts, banger_doctor_facts_free)

/* The rows, as a floating a(ssss) GVariant. */
GVariant *banger_doctor_checks (const BangerDoctorFacts *facts);

G_END_DECLS
