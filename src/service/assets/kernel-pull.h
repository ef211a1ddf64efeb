#pragma once

#include "engine-job.h"
#include "kernel-list.h"

G_BEGIN_DECLS

/* PullKernel's engine side (main context): the kernel called @name in the
 * catalog index (catalog-index.h) is downloaded with its sha256 checked
 * while it streams and imported like ImportKernel does (kernel-list.h: a
 * bzImage is also unpacked to an ELF vmlinux), registered as @as_name
 * (NULL or "": @name) with Source "catalog:<name>". Returns the job at once;
 * while a pull of @name runs, asking again returns that job. The job fails
 * with NotFound if the catalog index has no such kernel and Verification if the
 * download does not match; on any failure or cancel nothing is registered
 * and nothing is left on disk. Exists if @as_name is taken. */
BangerEngineJob *banger_kernel_list_pull (BangerKernelList *self, const char *name,
                                          const char *as_name, guint uid, GError **error);

G_END_DECLS
