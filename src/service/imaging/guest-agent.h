#pragma once

#include "ext4-writer.h"

G_BEGIN_DECLS

/* The guest agent in banger's images: where bangerd finds the binary and the
 * one place that writes it into an image (/.banger/agent, root's, 0755; the
 * kernel command line runs it as init=/.banger/agent). Every image source
 * (recipes, OCI pulls, rootfs tarballs) and the initramfs use these. */

/* $BANGER_AGENT (tests, a build tree), else the installed
 * <libexecdir>/banger/banger-agent. */
const char *banger_guest_agent_path (void);

/* Reads @agent_path whole (~1 MiB: reading before writing keeps a slow or
 * blocked source from holding the image half written) and writes it as
 * /.banger/agent. The error names the agent. */
gboolean banger_guest_agent_write (BangerExt4Writer *writer, const char *agent_path,
                                   GCancellable *cancellable, GError **error);

G_END_DECLS
