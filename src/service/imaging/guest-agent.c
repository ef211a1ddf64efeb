/* The guest agent's place in images (guest-agent.h). */
#include "config.h"

#include "guest-agent.h"

#include "banger-error.h"

const char *
banger_guest_agent_path (void)
{
  const char *env = g_getenv ("BANGER_AGENT");
  return env && *env ? env : BANGER_LIBEXECDIR "/banger/banger-agent";
}

gboolean
banger_guest_agent_write (BangerExt4Writer *writer, const char *agent_path,
                          GCancellable *cancellable, GError **error)
{
  g_autofree char *data = NULL;
  gsize size = 0;
  BangerExt4Attrs dir = { 0, 0, 0755, 0 };
  BangerExt4Attrs exe = { 0, 0, 0755, 0 };

  if (!g_file_get_contents (agent_path, &data, &size, error)) {
    g_prefix_error (error, "cannot read the guest agent: ");
    banger_error_convert (error);
    return FALSE;
  }
  if (g_cancellable_set_error_if_cancelled (cancellable, error)) {
    banger_error_convert (error);
    return FALSE;
  }
  return banger_ext4_writer_mkdir (writer, "/.banger", &dir, error)
         && banger_ext4_writer_add_file_data (writer, "/.banger/agent", &exe, data, size, error);
}
