/* The doctor's "ssh-shortcut" row: is `ssh NAME.vm` set up, and is what
 * `banger ssh-config` wrote still what it would write now? The texts are
 * src/common/ssh-shortcut.c's, the ones the CLI writes. bangerd runs as
 * the user, with the user's HOME and XDG directories, so it reads the same
 * files the user's ssh does. */

#include "config.h"

#include <string.h>

#include "doctor-private.h"
#include "doctor-ssh.h"
#include "ssh-shortcut.h"

#define FIX_HINT "run “banger ssh-config”"

void
banger_doctor_check_ssh_shortcut (GVariantBuilder *b)
{
  g_autofree char *user_config = banger_ssh_user_config_path ();
  g_autofree char *shortcut = banger_ssh_shortcut_path ();
  g_autofree char *block = banger_ssh_include_block (shortcut);
  g_autofree char *contents = NULL;
  g_autofree char *text = NULL;
  g_autofree char *program = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *sshd = NULL;
  g_autoptr (GError) local = NULL;
  gssize at;

  if (!g_file_get_contents (user_config, &contents, NULL, &local)) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "“ssh NAME.vm” is not set up: %s cannot be read (%s)", user_config,
                       local->message);
    return;
  }
  at = banger_ssh_find_block (contents, block);
  if (at < 0) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "“ssh NAME.vm” is not set up: %s does not include %s", user_config,
                       shortcut);
    return;
  }
  if (!banger_ssh_offset_is_global (contents, (gsize)at)) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT " (it moves the Include to the top)",
                       "the Include of %s in %s comes after a Host or Match line, so it applies "
                       "only to that block",
                       shortcut, user_config);
    return;
  }
  g_clear_error (&local);
  if (!g_file_get_contents (shortcut, &text, NULL, &local)) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "%s includes %s, which cannot be read (%s)", user_config, shortcut,
                       local->message);
    return;
  }
  program = banger_ssh_shortcut_program (text);
  if (program == NULL) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "%s is not the file “banger ssh-config” writes", shortcut);
    return;
  }
  expected = banger_ssh_shortcut_text (program);
  if (!g_str_equal (text, expected)) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "%s is out of date (edited, or written by another banger or for another "
                       "data directory)",
                       shortcut);
    return;
  }
  if (!g_file_test (program, G_FILE_TEST_IS_EXECUTABLE)) {
    banger_doctor_add (b, "ssh-shortcut", "warn", FIX_HINT,
                       "%s runs %s, which is not there any more", shortcut, program);
    return;
  }
  /* Which way a VM is reached depends on its image, not on the shortcut:
   * the row names both, and what the second needs. */
  sshd = banger_ssh_find_sshd ();
  if (sshd == NULL) {
    banger_doctor_add (b, "ssh-shortcut", "warn",
                       "install OpenSSH's server program (Debian: openssh-server; its service "
                       "need not run)",
                       "%s includes %s (current), but this host has no sshd program: “ssh "
                       "NAME.vm” reaches only VMs whose image has sshd, not those reached "
                       "through the guest agent",
                       user_config, shortcut);
    return;
  }
  banger_doctor_add (b, "ssh-shortcut", "ok", NULL,
                     "“ssh NAME.vm” reaches running VMs: %s includes %s (current); a VM whose "
                     "image has sshd through its sshd, one without through the guest agent "
                     "(%s -i as you)",
                     user_config, shortcut, sshd);
}
