#include "config.h"

#include "job-command.h"

#include <stdio.h>

#include "cmd-common.h"
#include "validate.h"

gboolean
banger_cli_follow_job (BangerCli *cli, const char *job_path, BangerProgressMode mode,
                       const char *interface, char **name, GError **error,
                       const char *failed_format, ...)
{
  g_autofree char *result = NULL;

  if (!banger_job_follow (cli->session, job_path, mode, &result, error)) {
    /* Interrupted is not "failed": the user stopped it. */
    if (!g_error_matches (*error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_INTERRUPTED)) {
      va_list ap;
      g_autofree char *prefix = NULL;

      va_start (ap, failed_format);
      prefix = g_strdup_vprintf (failed_format, ap);
      va_end (ap);
      g_prefix_error_literal (error, prefix);
    }
    return FALSE;
  }
  *name = banger_cli_object_name_at (cli, result, interface);
  return TRUE;
}

gboolean
banger_cli_run_named_job (BangerCli *cli, char **args, const BangerNamedJob *job, const char *name,
                          const char *progress, gboolean quiet, GError **error)
{
  BangerManager *manager;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *job_path = NULL;
  g_autofree char *made = NULL;
  BangerProgressMode mode;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  if (!banger_job_progress_mode_parse (progress, quiet, &mode, error))
    return FALSE;
  if (name != NULL) {
    if (!banger_validate_name (job->kind, name, error))
      return FALSE;
    g_variant_builder_add (&options, "{sv}", "name", g_variant_new_string (name));
  }
  manager = banger_cli_get_manager (cli, error);
  if (manager == NULL)
    return FALSE;
  if (!job->call (manager, args[0], g_variant_builder_end (&options), &job_path, NULL, error)) {
    banger_cli_error_annotate_object (error, job->object, name != NULL ? name : args[0]);
    return FALSE;
  }
  if (!banger_cli_follow_job (cli, job_path, mode, job->interface, &made, error, job->failed_format,
                              job->failed_names_name && name != NULL ? name : args[0]))
    return FALSE;
  printf ("%s\n", made != NULL ? made : name != NULL ? name : args[0]);
  return TRUE;
}
