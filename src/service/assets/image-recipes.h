#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Local image recipes, each writing a raw ext4 root filesystem with the
 * ext4 writer (no root, no loop device, no mke2fs):
 *   "minimal" — the host's busybox-static (/bin/busybox) with its applet
 *               symlinks, the guest agent at /.banger/agent and the few
 *               files a shell needs; 64 MiB, sparse; no network.
 *   "debian"  — debootstrap --variant=minbase with openssh-server and
 *               iproute2 from this host's Debian mirror, plus the agent; the
 *               ssh host keys and machine-id are removed (they are made per
 *               VM, never shared). Needs root (debootstrap chroots) and the
 *               mirror.
 * Blocking; run them from a worker thread. */

/* Called from the building thread. @fraction is 0..1. */
typedef void (*BangerRecipeProgressFunc) (double fraction, const char *message, gpointer user_data);

gboolean banger_image_recipe_is_known (const char *recipe);
/* "minimal, debian" for error messages. */
const char *banger_image_recipe_names (void);

/* Writes the image to @dest (replaced atomically: a failure or a
 * cancellation leaves no file there). @has_sshd tells whether the image
 * ships an sshd. */
gboolean banger_image_recipe_build (const char *recipe, const char *dest, const char *agent_path,
                                    BangerRecipeProgressFunc progress, gpointer progress_data,
                                    gboolean *has_sshd, GCancellable *cancellable, GError **error);

/* The Debian mirror debootstrap uses: $BANGER_DEBIAN_MIRROR, else the first
 * Debian archive URI in /etc/apt/sources.list{,.d}, else deb.debian.org. */
char *banger_image_recipe_debian_mirror (void);

G_END_DECLS
