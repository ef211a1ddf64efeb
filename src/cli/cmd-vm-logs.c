/* `banger vm logs` (with --follow), `banger vm stats` and `banger vm
 * ports`: what a VM prints and how it is doing, read-only. */

#include "config.h"

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-vm-private.h"
#include "errors.h"
#include "output-json.h"
#include "output-table.h"

static gboolean opt_follow;

const GOptionEntry banger_cli_vm_logs_options[] = {
  { "follow", 'f', 0, G_OPTION_ARG_NONE, &opt_follow, N_ ("Keep printing new output"), NULL },
  { NULL },
};

/* ---- logs ---- */

typedef struct {
  GMainLoop *loop;
  GInputStream *in;
  GOutputStream *out;
  GError *error;
  gboolean stop;
} LogFollow;

static gboolean
copy_available (LogFollow *f)
{
  gssize n = g_output_stream_splice (f->out, f->in, G_OUTPUT_STREAM_SPLICE_NONE, NULL, &f->error);

  if (n < 0) {
    g_main_loop_quit (f->loop);
    return FALSE;
  }
  g_output_stream_flush (f->out, NULL, NULL);
  return TRUE;
}

static gboolean
on_log_event (gpointer data)
{
  LogFollow *f = data;

  copy_available (f);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_inotify (int fd, GIOCondition condition, gpointer data)
{
  char buf[4096];

  /* The events only say "look again"; drain them. */
  while (read (fd, buf, sizeof buf) > 0)
    ;
  return on_log_event (data);
}

static void
on_log_vm_state (GObject *object, GParamSpec *pspec, gpointer data)
{
  LogFollow *f = data;

  /* Like `docker logs -f`: following ends when the VM stops. */
  if (!banger_cli_vm_state_is_running (banger_vm_get_state (BANGER_VM (object)))) {
    copy_available (f);
    g_main_loop_quit (f->loop);
  }
}

static gboolean
on_log_interrupt (gpointer data)
{
  LogFollow *f = data;

  g_main_loop_quit (f->loop);
  return G_SOURCE_CONTINUE;
}

/* Follows the console log: bangerd gave us a descriptor on a regular file,
 * where poll() always says "readable". inotify on /proc/self/fd/N watches
 * the file itself (the link is resolved at watch time), so new output
 * wakes us at once; a slow timer covers systems without inotify. */
static gboolean
follow_log (BangerVM *vm, int fd, GInputStream *in, GOutputStream *out, GError **error)
{
  LogFollow f = { 0 };
  g_autofree char *proc_path = g_strdup_printf ("/proc/self/fd/%d", fd);
  int ino;
  guint ino_source = 0, timer, sigint, sigterm;
  gulong handler;

  f.loop = g_main_loop_new (NULL, FALSE);
  f.in = in;
  f.out = out;

  ino = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (ino >= 0 && inotify_add_watch (ino, proc_path, IN_MODIFY) >= 0)
    ino_source = g_unix_fd_add (ino, G_IO_IN, on_inotify, &f);
  timer = g_timeout_add (ino_source != 0 ? 2000 : 250, on_log_event, &f);
  sigint = g_unix_signal_add (SIGINT, on_log_interrupt, &f);
  sigterm = g_unix_signal_add (SIGTERM, on_log_interrupt, &f);
  handler = g_signal_connect (vm, "notify::state", G_CALLBACK (on_log_vm_state), &f);

  if (banger_cli_vm_state_is_running (banger_vm_get_state (vm)))
    g_main_loop_run (f.loop);

  g_signal_handler_disconnect (vm, handler);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (timer);
  if (ino_source != 0)
    g_source_remove (ino_source);
  if (ino >= 0)
    close (ino);
  g_main_loop_unref (f.loop);
  if (f.error != NULL) {
    g_propagate_error (error, f.error);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_cli_vm_cmd_logs (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) handle = NULL;
  g_autoptr (GUnixFDList) out_fds = NULL;
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GOutputStream) out = NULL;
  int fd;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_vm_call_open_log_sync (vm, g_variant_builder_end (&options), NULL, &handle, &out_fds,
                                     NULL, error)) {
    banger_cli_error_annotate_vm (error, args[0]);
    return FALSE;
  }
  fd = out_fds != NULL ? g_unix_fd_list_get (out_fds, g_variant_get_handle (handle), error) : -1;
  if (fd < 0) {
    if (error != NULL && *error == NULL)
      g_set_error (error, BANGER_CLI_ERROR, BANGER_CLI_ERROR_FAILED,
                   _ ("bangerd sent no log descriptor for VM “%s”"), args[0]);
    return FALSE;
  }
  in = g_unix_input_stream_new (fd, TRUE);
  out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_NONE, NULL, error) < 0)
    return FALSE;
  g_output_stream_flush (out, NULL, NULL);
  if (!opt_follow)
    return TRUE;
  return follow_log (vm, fd, in, out, error);
}

gboolean
banger_cli_vm_cmd_stats (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (BangerTable) table = NULL;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_cli_vm_require_running (vm, args[0], error))
    return FALSE;
  if (!banger_vm_call_get_stats_sync (vm, &stats, NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, args[0], WANT_IN_USE);
    return FALSE;
  }
  if (banger_cli_vm_opt_json) {
    g_autoptr (JsonNode) node = json_gvariant_serialize (stats);

    banger_json_print (node, stdout);
    return TRUE;
  }
  table = banger_table_new (_ ("KEY"), _ ("VALUE"), NULL);
  g_variant_iter_init (&iter, stats);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
    g_autofree char *text = NULL;

    if (g_str_has_suffix (key, "_bytes") && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
      text = g_format_size_full (g_variant_get_uint64 (value), G_FORMAT_SIZE_IEC_UNITS);
    else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
      text = g_strdup_printf ("%.2f", g_variant_get_double (value));
    else
      text = g_variant_print (value, FALSE);
    banger_table_add_row (table, key, text);
    g_variant_unref (value);
  }
  banger_table_print (table, stdout);
  return TRUE;
}

gboolean
banger_cli_vm_cmd_ports (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (BangerVM) vm = NULL;
  g_autoptr (GVariant) ports = NULL;
  GVariantIter iter;
  const char *proto, *address, *process;
  guint16 port;
  guint32 pid;

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  vm = banger_cli_find_vm (cli, args[0], error);
  if (vm == NULL)
    return FALSE;
  if (!banger_cli_vm_require_running (vm, args[0], error))
    return FALSE;
  if (!banger_vm_call_list_ports_sync (vm, &ports, NULL, error)) {
    banger_cli_vm_annotate_vm_call (error, vm, args[0], WANT_IN_USE);
    return FALSE;
  }
  g_variant_iter_init (&iter, ports);
  if (banger_cli_vm_opt_json) {
    g_autoptr (JsonBuilder) builder = json_builder_new ();
    g_autoptr (JsonNode) root = NULL;

    json_builder_begin_array (builder);
    while (g_variant_iter_next (&iter, "(&s&squ&s)", &proto, &address, &port, &pid, &process)) {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "protocol");
      json_builder_add_string_value (builder, proto);
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, address);
      json_builder_set_member_name (builder, "port");
      json_builder_add_int_value (builder, port);
      json_builder_set_member_name (builder, "pid");
      json_builder_add_int_value (builder, pid);
      json_builder_set_member_name (builder, "process");
      json_builder_add_string_value (builder, process);
      json_builder_end_object (builder);
    }
    json_builder_end_array (builder);
    root = json_builder_get_root (builder);
    banger_json_print (root, stdout);
    return TRUE;
  }
  {
    g_autoptr (BangerTable) table
        = banger_table_new (_ ("PROTO"), _ ("ADDRESS"), _ ("PORT"), _ ("PID"), _ ("PROCESS"), NULL);

    while (g_variant_iter_next (&iter, "(&s&squ&s)", &proto, &address, &port, &pid, &process)) {
      g_autofree char *port_s = g_strdup_printf ("%u", port);
      g_autofree char *pid_s = pid ? g_strdup_printf ("%u", pid) : NULL;

      banger_table_add_row (table, proto, address, port_s, pid_s, process);
    }
    banger_table_print (table, stdout);
  }
  return TRUE;
}
