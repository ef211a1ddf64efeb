/* What the files of `banger vm` share (cmd-vm.c, cmd-vm-run.c,
 * cmd-vm-shell.c, cmd-vm-logs.c): the handlers and option tables the
 * command table in cmd-vm.c names, option storage more than one verb
 * reads, and the helpers for a VM in the wrong state, a start and a login.
 * Private to those files. */

#pragma once

#include <gio/gio.h>

#include "cli.h"
#include "job-progress.h"

/* Start takes as long as the guest needs to boot (seconds to a minute
 * under TCG); it is not hung while that lasts. */
#define START_TIMEOUT_MS (10 * 60 * 1000)

/* What a verb wanted of the VM, for the words when its state was wrong. */
typedef enum {
  WANT_STOPPED,   /* start */
  WANT_RUNNING,   /* stop, restart, kill */
  WANT_IN_USE,    /* exec, ssh, stats, ports: needs a running guest */
  WANT_SUSPENDED, /* resume */
} StateWanted;

/* Option storage shared between verbs (one command runs per process). */
/* --json of list, ps, show, stats and ports (cmd-vm.c). */
extern gboolean banger_cli_vm_opt_json;
/* What `vm create` and `vm run` both take (cmd-vm.c). */
extern char *banger_cli_vm_opt_image;
extern char *banger_cli_vm_opt_kernel;
extern char *banger_cli_vm_opt_driver;
/* --cold of `vm start` and `vm run`: boot, never a warm start (cmd-vm.c). */
extern gboolean banger_cli_vm_opt_cold;
/* Start's options from the flags above. */
GVariant *banger_cli_vm_start_options (void);
gboolean banger_cli_vm_parse_cpus (const char *option_name, const char *value, gpointer data,
                                   GError **error);
gboolean banger_cli_vm_parse_memory (const char *option_name, const char *value, gpointer data,
                                     GError **error);
gboolean banger_cli_vm_parse_disk (const char *option_name, const char *value, gpointer data,
                                   GError **error);
/* `vm exec --workdir`, which `vm run --repo` sets to the shipped tree
 * (cmd-vm-shell.c). */
extern char *banger_cli_vm_opt_workdir;

/* Option tables of the verbs in the other files. */
extern const GOptionEntry banger_cli_vm_run_options[];
extern const GOptionEntry banger_cli_vm_exec_options[];
extern const GOptionEntry banger_cli_vm_logs_options[];

/* Handlers of the verbs in the other files. */
gboolean banger_cli_vm_cmd_run (BangerCli *cli, char **args, GError **error);
gboolean banger_cli_vm_cmd_exec (BangerCli *cli, char **args, GError **error);
gboolean banger_cli_vm_cmd_ssh (BangerCli *cli, char **args, GError **error);
gboolean banger_cli_vm_cmd_logs (BangerCli *cli, char **args, GError **error);
gboolean banger_cli_vm_cmd_stats (BangerCli *cli, char **args, GError **error);
gboolean banger_cli_vm_cmd_ports (BangerCli *cli, char **args, GError **error);

/* cmd-vm.c */
BangerVM *banger_cli_vm_create_vm (BangerCli *cli, const char *name, GError **error);
void banger_cli_vm_annotate_vm_call (GError **error, BangerVM *vm, const char *name,
                                     StateWanted wanted);
gboolean banger_cli_vm_require_running (BangerVM *vm, const char *name, GError **error);
void banger_cli_vm_warn_if_no_network (BangerVM *vm, const char *name);

/* Following the jobs a start waits for (cmd-vm.c). */
typedef struct {
  GDBusObjectManager *objects;
  GQueue pending; /* job paths (char *) not followed yet */
  BangerProgressMode mode;
} JobWatch;

void banger_cli_vm_job_watch_init (JobWatch *w, BangerVM *vm);
void banger_cli_vm_job_watch_wait (JobWatch *w, const gboolean *done);
void banger_cli_vm_job_watch_clear (JobWatch *w);

/* cmd-vm-shell.c */

/* GetSSHConfig: how OpenSSH reaches the guest. */
typedef struct {
  GVariant *config;
  const char *host, *user, *identity, *known_hosts, *alias;
  guint16 port;
  gboolean has_sshd;
} SshConfig;

void banger_cli_vm_ssh_config_clear (SshConfig *c);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SshConfig, banger_cli_vm_ssh_config_clear)

gboolean banger_cli_vm_get_ssh_config (BangerVM *vm, const char *name, SshConfig *c,
                                       GError **error);
GPtrArray *banger_cli_vm_ssh_argv (const SshConfig *c, char **command);
extern const char *const banger_cli_vm_login_shell[];
gboolean banger_cli_vm_exec_in_vm (BangerVM *vm, const char *name, const char *const *argv,
                                   gboolean tty, int *status, GError **error);
gboolean banger_cli_vm_exec_instead_of_ssh (BangerVM *vm, const char *name, char **command,
                                            int *status, GError **error);
