#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

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
static gboolean opt_quiet;
static char *opt_name;
static char *opt_rootfs;
static char *opt_kernel;
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
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force, N_ ("Remove the image even while VMs use it"),
    NULL },
  { NULL },
};

static const GOptionEntry build_options[] = {
  { "name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
    N_ ("Name of the new image (default: the recipe)"), N_ ("NAME") },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, N_ ("Show no progress"), NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    N_ ("How to show progress: auto, bar, plain or none"), N_ ("MODE") },
  { NULL },
};

static const GOptionEntry register_options[] = {
  { "rootfs", 0, 0, G_OPTION_ARG_FILENAME, &opt_rootfs, N_ ("The raw ext4 root filesystem"),
    N_ ("FILE") },
  { "kernel", 0, 0, G_OPTION_ARG_STRING, &opt_kernel,
    N_ ("Kernel its VMs boot (default: the manager's)"), N_ ("KERNEL") },
  { NULL },
};

static void
print_image_table (GPtrArray *images)
{
  g_autoptr (BangerTable) table = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  table = banger_table_new (_ ("NAME"), _ ("SOURCE"), _ ("KERNEL"), _ ("SIZE"), _ ("USED BY"),
                            _ ("CREATED"), NULL);
  for (guint i = 0; i < images->len; i++) {
    BangerImage *image = g_ptr_array_index (images, i);
    g_autofree char *size
        = g_format_size_full (banger_image_get_size_bytes (image), G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *created = banger_format_time_ago (banger_image_get_created_at (image), now);
    const char *const *used = banger_image_get_used_by (image);
    g_autofree char *used_by
        = used != NULL && used[0] != NULL ? g_strjoinv (",", (char **)used) : NULL;
    const char *kernel = banger_image_get_kernel (image);

    banger_table_add_row (table, banger_image_get_name (image), banger_image_get_source (image),
                          kernel != NULL && kernel[0] != '\0' ? kernel : NULL, size, used_by,
                          created);
  }
  banger_table_print (table, stdout);
}

static gboolean
image_list (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GPtrArray) images = NULL;

  if (!banger_cli_check_args (cli, args, 0, 0, error))
    return FALSE;
  images = banger_cli_list_images (cli, error);
  if (images == NULL)
    return FALSE;
  banger_cli_print_list (images, opt_names, opt_json, print_image_table);
  return TRUE;
}

/* @argv as a shell would need it typed: words quoted only when they must
 * be, so `/bin/sh -c 'echo hi'` reads as what runs. */
static char *
join_words (const char *const *argv)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; argv != NULL && argv[i] != NULL; i++) {
    const char *word = argv[i];
    gboolean plain = word[0] != '\0';

    for (const char *p = word; *p != '\0' && plain; p++)
      plain = g_ascii_isalnum (*p) || strchr ("-_./=:,+@%", *p) != NULL;
    if (out->len > 0)
      g_string_append_c (out, ' ');
    if (plain) {
      g_string_append (out, word);
    } else {
      g_autofree char *quoted = g_shell_quote (word);
      g_string_append (out, quoted);
    }
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The image's run configuration (from its OCI config): what `vm run`
 * without a command starts. */
static void
print_run_config (GVariant *config)
{
  g_autofree const char **entrypoint = NULL;
  g_autofree const char **cmd = NULL;
  g_autofree const char **env = NULL;
  const char *workdir = NULL;
  const char *user = NULL;
  g_autofree char *entrypoint_text = NULL;
  g_autofree char *cmd_text = NULL;
  g_autofree char *env_text = NULL;

  if (config != NULL) {
    g_variant_lookup (config, "entrypoint", "^a&s", &entrypoint);
    g_variant_lookup (config, "cmd", "^a&s", &cmd);
    g_variant_lookup (config, "env", "^a&s", &env);
    g_variant_lookup (config, "workdir", "&s", &workdir);
    g_variant_lookup (config, "user", "&s", &user);
  }
  entrypoint_text = join_words (entrypoint);
  cmd_text = join_words (cmd);
  env_text = join_words (env);
  banger_cli_print_field (_ ("Entrypoint"), entrypoint_text);
  banger_cli_print_field (_ ("Cmd"), cmd_text);
  banger_cli_print_field (_ ("Env"), env_text);
  banger_cli_print_field (_ ("Workdir"), workdir);
  banger_cli_print_field (_ ("User"), user);
}

static gboolean
image_show (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerImage) image = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *size = NULL;
  g_autofree char *created = NULL;
  g_autofree char *used_by = NULL;
  const char *const *used;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  image = banger_cli_find_image (cli, args[0], error);
  if (image == NULL)
    return FALSE;
  if (opt_json) {
    banger_cli_print_json (G_DBUS_PROXY (image));
    return TRUE;
  }
  size = g_format_size_full (banger_image_get_size_bytes (image), G_FORMAT_SIZE_IEC_UNITS);
  created = banger_cli_format_time_both (banger_image_get_created_at (image), now);
  used = banger_image_get_used_by (image);
  used_by = used != NULL ? g_strjoinv (", ", (char **)used) : NULL;

  banger_cli_print_field (_ ("Name"), banger_image_get_name (image));
  banger_cli_print_field (_ ("Id"), banger_image_get_id (image));
  banger_cli_print_field (_ ("Source"), banger_image_get_source (image));
  banger_cli_print_field (_ ("Digest"), banger_image_get_digest (image));
  banger_cli_print_field (_ ("Size"), size);
  banger_cli_print_field (_ ("Kernel"), banger_image_get_kernel (image));
  banger_cli_print_field (_ ("Created"), created);
  banger_cli_print_field (_ ("Used by"), used_by);
  banger_cli_image_print_warm (cli, banger_image_get_name (image));
  print_run_config (banger_image_get_config (image));
  return TRUE;
}

static gboolean
image_build (BangerCli *cli, char **args, GError **error)
{
  const BangerNamedJob job = {
    .call = banger_manager_call_build_image_sync,
    .kind = "image",
    .object = BANGER_CLI_OBJECT_IMAGE,
    .interface = "org.banger.Image",
    .failed_format = _ ("building image “%s” failed: "),
    .failed_names_name = TRUE,
  };

  return banger_cli_run_named_job (cli, args, &job, opt_name, opt_progress, opt_quiet, error);
}

static gboolean
image_register (BangerCli *cli, char **args, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *path = NULL;
  g_autofree char *rootfs = NULL;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  if (opt_rootfs == NULL)
    return banger_cli_usage_error (cli, error, _ ("missing option: %s"), "--rootfs FILE");
  if (!banger_validate_name ("image", args[0], error))
    return FALSE;
  rootfs = banger_cli_absolute_file (opt_rootfs, _ ("root filesystem"), error);
  if (rootfs == NULL)
    return FALSE;
  if (opt_kernel != NULL)
    g_variant_builder_add (&options, "{sv}", "kernel", g_variant_new_string (opt_kernel));
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!banger_manager_call_register_image_sync (
          manager, args[0], rootfs, g_variant_builder_end (&options), &path, NULL, error)) {
    banger_cli_error_annotate_object (error, BANGER_CLI_OBJECT_IMAGE, args[0]);
    return FALSE;
  }
  printf ("%s\n", args[0]);
  return TRUE;
}

static gboolean
image_rm (BangerCli *cli, char **args, GError **error)
{
  const BangerDelete del = {
    .call = banger_manager_call_delete_image_sync,
    .object = BANGER_CLI_OBJECT_IMAGE,
    .force = opt_force,
    .busy_hint = _ ("%s (remove those VMs first, or use “banger image rm -f %s”)"),
  };

  return banger_cli_delete_names (cli, args, &del, error);
}

#define LEAF(name, summary, params, options, handler, flags)                                       \
  static const BangerCommand image_##handler##_command                                             \
      = { name, summary, params, options, image_##handler, NULL, flags }

LEAF ("build", N_ ("Build an image from a recipe: minimal or debian"), N_ ("RECIPE"), build_options,
      build, 0);
LEAF ("register", N_ ("Register a root filesystem file as an image"), N_ ("NAME"), register_options,
      register, 0);
LEAF ("list", N_ ("List images"), NULL, list_options, list, 0);
LEAF ("show", N_ ("Show an image's details"), N_ ("NAME"), json_options, show,
      BANGER_COMMAND_FLAG_IMAGE_ARGS);
LEAF ("rm", N_ ("Remove images"), N_ ("NAME…"), rm_options, rm, BANGER_COMMAND_FLAG_IMAGE_ARGS);
/* The seed's name for `image rm`. */
static const BangerCommand image_delete_command = {
  "delete",     N_ ("Alias of “banger image rm”"),
  N_ ("NAME…"), rm_options,
  image_rm,     NULL,
  BANGER_COMMAND_FLAG_IMAGE_ARGS | BANGER_COMMAND_FLAG_ALIAS,
};

static const BangerCommand *const image_subcommands[] = {
  &banger_image_pull_command,
  &image_build_command,
  &image_register_command,
  &banger_image_promote_command,
  &image_list_command,
  &image_show_command,
  &image_rm_command,
  &image_delete_command,
  &banger_image_cache_command,
  &banger_image_warm_command,
  NULL,
};

const BangerCommand banger_image_command = {
  "image", N_ ("Pull, build, register and remove root filesystem images"),
  NULL,    NULL,
  NULL,    image_subcommands,
  0,
};
