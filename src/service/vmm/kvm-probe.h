#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Proves that KVM really works: a present /dev/kvm can still hang forever on
 * a host without vmx/svm (TESTING.md). In a child process: create a VM,
 * load one `hlt` instruction, run one vCPU and expect KVM_EXIT_HLT, all
 * within @timeout_ms. On failure @reason (if not NULL) says why. */
gboolean banger_kvm_probe (const char *dev_path, guint timeout_ms, char **reason);

G_END_DECLS
