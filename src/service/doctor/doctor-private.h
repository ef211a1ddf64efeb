#pragma once

#include "install-config.h"

#include <gio/gio.h>

#include "doctor.h"

G_BEGIN_DECLS

/* One row. A non-ok row without a hint is a bug in the check: it gets a
 * generic one (and a critical in debug builds' tests) so users are never
 * left without a next step. */
void banger_doctor_add (GVariantBuilder *b, const char *id, const char *status, const char *hint,
                        const char *fmt, ...) G_GNUC_PRINTF (5, 6);

/* helper.conf: $BANGER_HELPER_CONF (tests, unusual installs) or
 * BANGER_SYSCONFDIR/helper.conf; missing keys give NULL. */

/* A private connection to the system bus (NULL with @error when there is
 * none): the shared singleton would end bangerd when the bus goes away. */
/* The engine's system-bus connection (its helper client's). */
GDBusConnection *banger_doctor_system_bus (const BangerDoctorFacts *f, GError **error);

/* doctor-host.c: architecture, kvm, tun, qemu, qemu-img, firecracker,
 * jailer, lifecycle, vm-defaults, disk-space. */
void banger_doctor_check_host (GVariantBuilder *b, const BangerDoctorFacts *f);
/* The architecture row (doctor-host.c), first of all. */
void banger_doctor_check_architecture (GVariantBuilder *b);
/* doctor-install.c: helper, versions, units, bus-policy, sockets,
 * helper-hardening. */
void banger_doctor_check_install (GVariantBuilder *b, const BangerDoctorFacts *f);
/* doctor-net.c: dns-routing, bridge, forwarding, nat, firewall. */
void banger_doctor_check_network (GVariantBuilder *b, const BangerDoctorFacts *f);
/* The agent rows: agent, vm-agents, vm-agent:<name>. */
void banger_doctor_check_agents (GVariantBuilder *b, const BangerDoctorFacts *f);
void banger_doctor_check_suspended (GVariantBuilder *b, const BangerDoctorFacts *f);

/* The hardening directives the helper's unit must have, as systemd's
 * D-Bus properties (org.freedesktop.systemd1.Service) with the value
 * data/systemd/bangerd-root.service.in sets; a unit test checks the two
 * agree. @directive is the unit file's key, @value its text there. */
typedef struct {
  const char *directive;
  const char *value;
} BangerDoctorDirective;
const BangerDoctorDirective *banger_doctor_hardening_directives (void);

G_END_DECLS
