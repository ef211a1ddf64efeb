#pragma once

#include <gio/gio.h>

#include "banger-dbus.h"

G_BEGIN_DECLS

/* What to run in the guest. */
typedef struct {
  const char *const *argv; /* the command; argv[0] is looked up on the guest's PATH */
  const char *const *env;  /* KEY=VALUE entries to add, or NULL */
  const char *cwd;         /* working directory in the guest, or NULL */
  gboolean tty;            /* run on a pseudo-terminal in the guest */
  gboolean quiet;          /* stdin, stdout and stderr are /dev/null (probes) */
} BangerExecSpec;

/* Runs @spec in @vm (called @name, for messages) through VM.Exec, handing
 * bangerd this process's stdin, stdout and stderr as file descriptors,
 * and waits until the command has ended. @exit_status is its status, or
 * 128+n when signal n ended it.
 *
 * While it runs: with @spec->tty and a terminal on stdin, the terminal is
 * raw (so ^C travels to the guest as a byte) and SIGWINCH becomes
 * VM.ResizeExec; SIGINT, SIGTERM and SIGHUP sent to banger are forwarded
 * to the guest process with VM.SignalExec (a third SIGINT sends SIGKILL). */
gboolean banger_cli_exec (BangerVM *vm, const char *name, const BangerExecSpec *spec,
                          int *exit_status, GError **error);

G_END_DECLS
