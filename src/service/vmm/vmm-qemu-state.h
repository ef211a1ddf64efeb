#pragma once

#include "vmm.h"

G_BEGIN_DECLS

/* The qemu driver's saved state (vmm.h: save_state, resume_paused,
 * config->incoming_state): QEMU's own migration stream, written to and read
 * from a file QEMU gets as a descriptor over QMP (getfd + "fd:" URIs; QEMU
 * 7.2 has no "file:" URI, and "exec:" would need a shell). */

#define BANGER_QEMU_STATE_FDNAME "banger-state"

gboolean banger_vmm_qemu_save_state (BangerVmmInstance *instance, const char *state_dir,
                                     GError **error);
gboolean banger_vmm_qemu_resume_paused (BangerVmmInstance *instance, GError **error);

/* After a QEMU started with "-incoming defer" daemonized: feeds it
 * @state_dir's state and waits until the guest runs. On failure the caller
 * ends that QEMU. */
gboolean banger_vmm_qemu_load_state (BangerVmmInstance *instance, const char *state_dir,
                                     GError **error);

G_END_DECLS
