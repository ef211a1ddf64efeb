#pragma once

#include <gio/gio.h>

#include "banger-dbus.h"

G_BEGIN_DECLS

typedef struct _BangerCli BangerCli;
typedef struct _BangerCommand BangerCommand;

/* A handler gets the positional arguments left after option parsing
 * (NULL-terminated, without the command words). It returns FALSE with
 * @error set on failure; BANGER_CLI_ERROR_USAGE errors exit with 2. A
 * handler that must exit with another status (exec) sets cli->exit_status. */
typedef gboolean (*BangerCommandFunc) (BangerCli *cli, char **args, GError **error);

typedef enum {
  BANGER_COMMAND_FLAG_NONE = 0,
  /* Not listed in help or completion (internal helpers). */
  BANGER_COMMAND_FLAG_HIDDEN = 1 << 0,
  /* Positional arguments are VM names: shells complete them. */
  BANGER_COMMAND_FLAG_VM_ARGS = 1 << 1,
  /* Options end at the first positional argument, so `vm exec dev ls -l`
   * passes "-l" to the guest command. */
  BANGER_COMMAND_FLAG_STOP_AT_ARGS = 1 << 2,
  /* Positional arguments are image / kernel names. */
  BANGER_COMMAND_FLAG_IMAGE_ARGS = 1 << 3,
  BANGER_COMMAND_FLAG_KERNEL_ARGS = 1 << 4,
  /* Another name for a command: the row shares the target's handler,
   * options or subcommand table (never a copy of its code); help says
   * which command it stands for in its summary. */
  BANGER_COMMAND_FLAG_ALIAS = 1 << 5,
} BangerCommandFlags;

/* One row of the command table. A group has @subcommands and no @handler;
 * a leaf has a @handler and its @options. */
struct _BangerCommand {
  const char *name;
  const char *summary;    /* N_() */
  const char *parameters; /* N_(), e.g. "NAME…"; NULL when none */
  const GOptionEntry *options;
  BangerCommandFunc handler;
  const BangerCommand *const *subcommands; /* NULL-terminated */
  BangerCommandFlags flags;
};

struct _BangerCli {
  int verbosity;
  /* "banger vm create": the words that chose the command, for messages. */
  char *command_path;
  const BangerCommand *command;
  int exit_status;
  /* The positional arguments came after a "--" that preceded them all
   * (`vm run -- CMD` against `vm run PATH`). */
  gboolean dashdash_first;

  /* Connected lazily by banger_cli_get_manager(). */
  GDBusConnection *session;
  BangerManager *manager;
};

/* The root of the command table (command-table.c). */
extern const BangerCommand banger_root_command;

/* Commands defined next to their handlers. */
extern const BangerCommand banger_vm_command;
extern const BangerCommand banger_image_command;
extern const BangerCommand banger_kernel_command;
extern const BangerCommand banger_system_command;
/* `banger daemon …`: the seed's name for `banger system …`. */
extern const BangerCommand banger_daemon_command;
/* `banger ps`: `banger vm ps`. */
extern const BangerCommand banger_ps_command;
extern const BangerCommand banger_version_command;
/* `banger ssh-config` and the hidden commands its ssh config runs
 * (cmd-ssh-config.c). */
extern const BangerCommand banger_ssh_config_command;
extern const BangerCommand banger_ssh_proxy_command;
extern const BangerCommand banger_ssh_known_hosts_command;
extern const BangerCommand banger_ssh_uses_agent_command;
extern const BangerCommand banger_agent_session_command;
extern const BangerCommand banger_doctor_command;
extern const BangerCommand banger_update_command;
extern const BangerCommand banger_completion_command;
/* `image pull`, `image promote`, `image cache` (cmd-image-pull.c). */
extern const BangerCommand banger_image_pull_command;
extern const BangerCommand banger_image_promote_command;
extern const BangerCommand banger_image_cache_command;
/* `image warm list|prune` and image show's warm line (cmd-image-warm.c). */
extern const BangerCommand banger_image_warm_command;
void banger_cli_image_print_warm (BangerCli *cli, const char *image);

/* Options every command accepts (-v, -h). */
extern const GOptionEntry banger_global_options[];
/* Set by the -h/--help entry of banger_global_options. */
extern gboolean banger_opt_help;

/* Looks up @name among @group's subcommands (hidden ones included). */
const BangerCommand *banger_command_lookup (const BangerCommand *group, const char *name);

/* Runs the command named by argv (argv[0] is the program). Returns the exit
 * status; prints errors. */
int banger_command_run (BangerCli *cli, int argc, char **argv);

void banger_cli_clear (BangerCli *cli);

/* The manager proxy on the session bus, starting bangerd by activation if it
 * is not running. Errors say that bangerd cannot be reached. */
BangerManager *banger_cli_get_manager (BangerCli *cli, GError **error);

/* The VM called @name (Manager.FindVM, then a proxy on its object). */
BangerVM *banger_cli_find_vm (BangerCli *cli, const char *name, GError **error);
BangerVM *banger_cli_find_vm_to_call (BangerCli *cli, const char *name, GError **error);

/* Proxies for every VM, oldest first. */
GPtrArray *banger_cli_list_vms (BangerCli *cli, GError **error);

/* Every VM as a BangerVmRow (vm-row.h), oldest first, then by name: what
 * `vm list` prints. Read straight from one GetManagedObjects reply,
 * without the GDBusObjectManagerClient that banger_cli_list_vms() builds,
 * whose object and interface proxy per VM (each with its properties copied
 * into a hash table) were most of `vm list`'s time with 1,000 VMs. */
GPtrArray *banger_cli_list_vm_rows (BangerCli *cli, gboolean with_properties, GError **error);

/* Proxies for every image / kernel, oldest first. */
GPtrArray *banger_cli_list_images (BangerCli *cli, GError **error);
GPtrArray *banger_cli_list_kernels (BangerCli *cli, GError **error);

/* The image / kernel called @name; a NotFound error names it. */
BangerImage *banger_cli_find_image (BangerCli *cli, const char *name, GError **error);
BangerKernel *banger_cli_find_kernel (BangerCli *cli, const char *name, GError **error);

/* TRUE for the states docker would call "up" (a VMM process exists). */
gboolean banger_cli_vm_state_is_running (const char *state);

/* Sets a usage error (exit status 2) naming the command. */
gboolean banger_cli_usage_error (BangerCli *cli, GError **error, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

/* Checks the number of positional arguments. */
gboolean banger_cli_check_args (BangerCli *cli, char **args, guint min, guint max, GError **error);

G_END_DECLS
