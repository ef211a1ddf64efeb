#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The "ssh-shortcut" row (doctor-ssh.c): `ssh NAME.vm` set up by
 * `banger ssh-config` and current. */
void banger_doctor_check_ssh_shortcut (GVariantBuilder *b);

G_END_DECLS
