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

/* The guest memory as a file of its own (docs/warm-start.md, "The
 * template's memory as a file"): a QEMU started with config->ram_shared
 * keeps it in a memfd named after this RAM block, which save_state() copies
 * into BANGER_VMM_MEMORY_FILE (the stream then skips it: x-ignore-shared);
 * a restore maps that file copy-on-write instead of reading it. The id is
 * QEMU's own default one ("pc.ram" for q35), so a stream saved with the
 * memory in a file or in anonymous memory names the same block, and either
 * loads into the other. */
#define BANGER_QEMU_RAM_ID "pc.ram"
/* @state_dir's memory file if its state keeps one, else NULL. */
char *banger_vmm_qemu_ram_file (const char *state_dir);
G_END_DECLS
