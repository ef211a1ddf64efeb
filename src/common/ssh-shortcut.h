#pragma once

/* The "ssh shortcut" (docs/cli.md, `banger ssh-config`): a file of banger's
 * own with a `Host *.vm` block, and an `Include` of it at the top of the
 * user's ~/.ssh/config. Shared by the CLI, which writes both, and
 * bangerd's doctor, which checks them. */

#include <glib.h>

G_BEGIN_DECLS

/* ~/.ssh/config ($HOME first: the tests give each world its own). */
char *banger_ssh_user_config_path (void);
/* banger's file: $XDG_CONFIG_HOME/banger/ssh_config. */
char *banger_ssh_shortcut_path (void);
/* The lines put at the top of ~/.ssh/config: a comment and the Include of
 * @shortcut_path, each ending in a newline. */
char *banger_ssh_include_block (const char *shortcut_path);
/* The text of banger's file for the banger program @banger_program (an
 * absolute path): the key, the host keys through KnownHostsCommand and
 * the connection through ProxyCommand, both run by that program, and a
 * Match block that makes the login name this user's own for VMs without
 * sshd (the text depends on the user running it). */
char *banger_ssh_shortcut_text (const char *banger_program);
/* The program a shortcut file's text names (its "# program:" line), or
 * NULL when @text is not one of banger's. */
char *banger_ssh_shortcut_program (const char *text);
/* Where @block starts in @config as whole lines, or -1. */
gssize banger_ssh_find_block (const char *config, const char *block);
/* TRUE when no Host or Match line comes before @offset in @config: an
 * Include there applies to every host (OpenSSH reads an Include after a
 * Host line as part of that block). */
gboolean banger_ssh_offset_is_global (const char *config, gsize offset);
/* OpenSSH's server program as an absolute path, or NULL: the ProxyCommand
 * runs it in inetd mode for VMs whose image has no sshd. */
char *banger_ssh_find_sshd (void);

G_END_DECLS
