#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "banger-error.h"
#include "cli.h"
#include "cmd-common.h"
#include "errors.h"
#include "job-command.h"
#include "output-table.h"
#include "output-time.h"
#include "validate.h"

static gboolean opt_json;
static gboolean opt_names;
static gboolean opt_force;
static char *opt_name;
static char *opt_initrd;
static gboolean opt_quiet;
static char *opt_progress;

static const GOptionEntry list_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  /* For shell completion: one name per line. */
  { "names", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_names, N_ ("Print names only"),
    NULL },
  { NULL },
};

static const GOptionEntry json_options[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_ ("Print JSON"), NULL },
  { NULL },
};

static const GOptionEntry rm_options[] = {
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force,
    N_ ("Remove the kernel even while images or VMs use it"), NULL },
  { NULL },
};

static const GOptionEntry import_options[] = {
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the kernel (default: from its version)"), N_ ("NAME") },
  { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt_initrd,
    N_ ("An initramfs to boot it with (default: banger writes one if the kernel needs it)"),
    N_ ("FILE") },
  { NULL },
};

static const GOptionEntry pull_options[] = {
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the kernel (default: its catalog name)"), N_ ("NAME") },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, N_ ("Show no progress"), NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    N_ ("How to show progress: auto, bar, plain or none"), N_ ("MODE") },
  { NULL },
};

static const char *
or_null (const char *s)
{
  return s != NULL && s[0] != '\0' ? s : NULL;
}

static void
print_kernel_table (GPtrArray *kernels)
{
  g_autoptr (BangerTable) table = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  table = banger_table_new (_ ("NAME"), _ ("VERSION"), _ ("SOURCE"), _ ("INITRD"), _ ("CREATED"),
                            NULL);
  for (guint i = 0; i < kernels->len; i++) {
    BangerKernel *kernel = g_ptr_array_index (kernels, i);
    g_autofree char *created = banger_format_time_ago (banger_kernel_get_created_at (kernel), now);
    const char *initrd = or_null (banger_kernel_get_initrd_path (kernel));

    banger_table_add_row (table, banger_kernel_get_name (kernel),
                          or_null (banger_kernel_get_version (kernel)),
                          or_null (banger_kernel_get_source (kernel)),
                          initrd != NULL ? _ ("yes") : _ ("no"), created);
  }
  banger_table_print (table, stdout);
}

static gboolean
kernel_list (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GPtrArray) kernels = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  kernels = banger_cli_list_kernels (cli, error);
  if (kernels == NULL)
    return FALSE;
  banger_cli_print_list (kernels, opt_names, opt_json, print_kernel_table);
  return TRUE;
}

static void
print_kernel (BangerKernel *kernel)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *created
      = banger_cli_format_time_both (banger_kernel_get_created_at (kernel), now);

  banger_cli_print_field (_ ("Name"), banger_kernel_get_name (kernel));
  banger_cli_print_field (_ ("Id"), banger_kernel_get_id (kernel));
  banger_cli_print_field (_ ("Version"), banger_kernel_get_version (kernel));
  banger_cli_print_field (_ ("Source"), banger_kernel_get_source (kernel));
  banger_cli_print_field (_ ("Path"), banger_kernel_get_path (kernel));
  banger_cli_print_field (_ ("vmlinux"), banger_kernel_get_vmlinux_path (kernel));
  banger_cli_print_field (_ ("Initrd"), banger_kernel_get_initrd_path (kernel));
  banger_cli_print_field (_ ("Created"), created);
}

static gboolean
kernel_show (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerKernel) kernel = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  kernel = banger_cli_find_kernel (cli, args[0], error);
  if (kernel == NULL)
    return FALSE;
  if (opt_json) {
    banger_cli_print_json (G_DBUS_PROXY (kernel));
    return TRUE;
  }
  print_kernel (kernel);
  return TRUE;
}

static gboolean
kernel_import (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *path = NULL;
  g_autofree char *initrd = NULL;
  g_autofree char *object_path = NULL;
  g_autoptr (BangerKernel) kernel = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  if (opt_name != NULL && !banger_validate_name ("kernel", opt_name, error))
    return FALSE;
  path = banger_cli_absolute_file (args[0], _ ("kernel"), error);
  if (path == NULL)
    return FALSE;
  if (opt_name != NULL)
    g_variant_builder_add (&options, "{sv}", "name", g_variant_new_string (opt_name));
  if (opt_initrd != NULL) {
    initrd = banger_cli_absolute_file (opt_initrd, _ ("initrd"), error);
    if (initrd == NULL)
      return FALSE;
    g_variant_builder_add (&options, "{sv}", "initrd", g_variant_new_string (initrd));
  }
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_import_kernel_sync (manager, path, g_variant_builder_end (&options),
                                               &object_path, NULL, error)) {
    /* "Exists" is about the name; anything else about the file. */
    if (opt_name != NULL && g_error_matches (*error, BANGER_ERROR, BANGER_ERROR_EXISTS)) {
      banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_KERNEL, opt_name);
    } else {
      banger_cli_error_annotate (error);
      if ((*error)->domain != BANGER_CLI_ERROR)
        g_prefix_error (error, _ ("cannot import “%s” as a kernel: "), args[0]);
    }
    return FALSE;
  }
  kernel = banger_kernel_proxy_new_sync (cli->session, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                         "org.banger.Manager", object_path, NULL, NULL);
  if (kernel != NULL && banger_kernel_get_name (kernel) != NULL)
    printf ("%s\n", banger_kernel_get_name (kernel));
  else
    printf ("%s\n", opt_name != NULL ? opt_name : object_path);
  return TRUE;
}

static gboolean
kernel_pull (BangerCli *cli, char **args, GError **error)
{
  const BangerNamedJob job = {
    .call = banger_manager_call_pull_kernel_sync,
    .kind = "kernel",
    .object = BANGER_CLI_OBJECT_KERNEL,
    .interface = "org.banger.Kernel",
    .failed_format = _ ("pulling kernel “%s” failed: "),
    .failed_names_name = FALSE,
  };

  return banger_cli_run_named_job (cli, args, &job, opt_name, opt_progress, opt_quiet, error);
}

static gboolean
kernel_rm (BangerCli *cli, char **args, GError **error)
{
  const BangerDelete del = {
    .call = banger_manager_call_delete_kernel_sync,
    .object = BANGER_CLI_OBJECT_KERNEL,
    .force = opt_force,
    .busy_hint = _ ("%s (remove what uses it first, or use “banger kernel rm -f %s”)"),
  };

  return banger_cli_delete_names (cli, args, &del, error);
}

#define LEAF(name, summary, params, options, handler, flags)                                       \
  static const BangerCommand kernel_##handler##_command                                            \
      = { name, summary, params, options, kernel_##handler, NULL, flags }

LEAF ("pull", N_ ("Pull a kernel named in the catalog"), N_ ("NAME"), pull_options, pull, 0);
LEAF ("import", N_ ("Import a kernel file (vmlinux or bzImage)"), N_ ("PATH"), import_options,
      import, 0);
LEAF ("list", N_ ("List kernels"), NULL, list_options, list, 0);
LEAF ("show", N_ ("Show a kernel's details"), N_ ("NAME"), json_options, show,
      BANGER_COMMAND_FLAG_KERNEL_ARGS);
LEAF ("rm", N_ ("Remove kernels"), N_ ("NAME…"), rm_options, rm, BANGER_COMMAND_FLAG_KERNEL_ARGS);

static const BangerCommand *const kernel_subcommands[] = {
  &kernel_pull_command, &kernel_import_command, &kernel_list_command,
  &kernel_show_command, &kernel_rm_command,     NULL,
};

const BangerCommand banger_kernel_command = {
  "kernel", N_ ("Pull, import, list and remove guest kernels"),
  NULL,     NULL,
  NULL,     kernel_subcommands,
  0,
};
