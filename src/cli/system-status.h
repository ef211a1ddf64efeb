#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* `banger system status`: is banger installed and usable by the caller?
 * Units, versions and their drift, bus names, group, linger, network. */

typedef struct {
  char *active;  /* systemd's ActiveState, or NULL where systemd does not run */
  char *enabled; /* UnitFileState */
} BangerUnitState;

typedef struct {
  gboolean systemd;
  gboolean session_bus;
  gboolean files_installed;
  BangerUnitState helper_unit;
  BangerUnitState manager_unit;
  char *cli_version;
  char *bangerd_version; /* NULL: bangerd did not answer */
  char *helper_version;  /* NULL: bangerd-root did not answer */
  char *install_version; /* install.toml's version; NULL without one */
  char *bangerd_error;
  char *helper_error;
  gboolean drift;
  gboolean manager_owned;
  gboolean helper_owned;
  gboolean group_exists;
  gboolean group_member;    /* in the group database */
  gboolean group_effective; /* in this process's groups */
  gboolean linger;
  gboolean network_up;
  char *network_address;
  char *user;
  GPtrArray *problems; /* translated sentences, each naming its fix */
} BangerSystemStatus;

BangerSystemStatus *banger_system_status_collect (void);
void banger_system_status_free (BangerSystemStatus *status);
JsonNode *banger_system_status_to_json (const BangerSystemStatus *status);
void banger_system_status_print (const BangerSystemStatus *status, FILE *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerSystemStatus, banger_system_status_free)

G_END_DECLS
