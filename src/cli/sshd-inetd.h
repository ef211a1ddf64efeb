#pragma once

/* `ssh NAME.vm` to a VM whose image has no sshd (docs/cli.md, "VMs
 * without sshd"): banger's ProxyCommand becomes the host's own sshd in
 * inetd mode (`sshd -i`), as the user, with a configuration banger writes
 * for that VM: its pinned host key, banger's key as the only authorized
 * one, no password, no forwarding, and every session forced into
 * `banger __agent-session NAME`, which runs it in the guest through the
 * agent. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* The Subsystem command sftp requests arrive as (SSH_ORIGINAL_COMMAND). */
#define BANGER_SSHD_SFTP_MARK "__banger-sftp-server"

/* Replaces this process with sshd serving VM @name, whose GetSSHConfig is
 * @config, to a client logging in as @login; @program is this banger.
 * Returns only on failure. */
gboolean banger_cli_sshd_inetd_exec (const char *program, const char *name, GVariant *config,
                                     const char *login, GError **error);

G_END_DECLS
