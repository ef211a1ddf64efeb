#pragma once

#include "image-list.h"
#include "engine-job.h"

G_BEGIN_DECLS

/* PromoteVM's engine side (main context): the disk of VM @vm becomes image
 * @name. The VM dir holds the VM's own disk — a qcow2 overlay on its
 * image's raw rootfs (vmm-qemu.c: disk.qcow2) or a raw copy (Firecracker:
 * disk.raw) — and qemu-img flattens it to a raw ext4 file in the new
 * image's directory under a temporary name. The image is registered with
 * Source "vm:<vm>", the VM's kernel and its image's run config.
 *
 * Refused with BadState (naming the state) unless the VM is stopped or in
 * error: while it is starting, running or stopping its disk is changing,
 * and a VM that was created but never started has no disk yet. Exists if
 * @name is taken, Busy while another promote to @name runs. Returns the
 * job at once; on any failure or cancel nothing is registered and nothing
 * is left on disk. */
BangerEngineJob *banger_image_list_promote_vm (BangerImageList *self, const char *vm, const char *name,
                                            guint uid, GError **error);

G_END_DECLS
