#include "orphans.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "remove-tree.h"
#include "ssh-keys.h"
#include "store-images.h"

static gboolean
is_id (const char *name)
{
  gsize n = 0;

  for (; name[n] != '\0'; n++)
    if (!g_ascii_isxdigit (name[n]) || g_ascii_isupper (name[n]))
      return FALSE;
  return n == 16;
}

/* Removes the id-named directories under @base that @known lacks; with
 * @known_hosts, also the host key pinned for each (a VM's). */
static guint
sweep (const char *base, GHashTable *known, const char *known_hosts)
{
  g_autoptr (GDir) dir = g_dir_open (base, 0, NULL);
  const char *name;
  guint removed = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = NULL;
    if (!is_id (name) || g_hash_table_contains (known, name))
      continue;
    path = g_build_filename (base, name, NULL);
    if (!g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
      continue;
    g_info ("removing %s: no record in the store (left by an interrupted pull or build)", path);
    g_autoptr (GError) error = NULL;
    if (!banger_remove_tree (path, &error))
      g_warning ("%s", error->message);
    if (known_hosts != NULL && g_file_test (known_hosts, G_FILE_TEST_EXISTS)) {
      g_autofree char *alias = g_strdup_printf ("banger-%s", name);
      g_clear_error (&error);
      if (!banger_ssh_unpin_host_key (known_hosts, alias, &error))
        g_warning ("cannot unpin %s: %s", alias, error->message);
    }
    removed++;
  }
  return removed;
}

guint
banger_orphans_remove (BangerVmList *engine)
{
  BangerStore *store = banger_vm_list_get_store (engine);
  const char *data_dir = banger_vm_list_get_data_dir (engine);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) images = banger_store_image_list (store, &error);
  g_autoptr (GPtrArray) kernels = NULL;
  g_autoptr (GHashTable) image_ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) kernel_ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *images_dir = g_build_filename (data_dir, "images", NULL);
  g_autofree char *kernels_dir = g_build_filename (data_dir, "kernels", NULL);
  g_autofree char *vms_dir = g_build_filename (data_dir, "vms", NULL);
  g_autofree char *known_hosts = g_build_filename (data_dir, "ssh", "known_hosts", NULL);
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GHashTable) vm_ids = g_hash_table_new (g_str_hash, g_str_equal);
  guint removed;

  /* Without the full list nothing can be called an orphan. */
  if (images == NULL) {
    g_warning ("orphan cleanup skipped: %s", error->message);
    return 0;
  }
  kernels = banger_store_kernel_list (store, &error);
  if (kernels == NULL) {
    g_warning ("orphan cleanup skipped: %s", error->message);
    return 0;
  }
  vms = banger_store_vm_list (store, &error);
  if (vms == NULL) {
    g_warning ("orphan cleanup skipped: %s", error->message);
    return 0;
  }
  for (guint i = 0; i < vms->len; i++)
    g_hash_table_add (vm_ids, ((BangerVmRecord *)vms->pdata[i])->id);
  for (guint i = 0; i < images->len; i++)
    g_hash_table_add (image_ids, ((BangerImageRecord *)images->pdata[i])->id);
  for (guint i = 0; i < kernels->len; i++)
    g_hash_table_add (kernel_ids, ((BangerKernelRecord *)kernels->pdata[i])->id);
  /* A VM's directory goes after its record (remove_record in manager.c):
   * a bangerd killed in between left the directory, its overlay disk and
   * its pinned host key. No VMM runs from it: a VM is killed before its
   * record is deleted. */
  removed = sweep (images_dir, image_ids, NULL) + sweep (kernels_dir, kernel_ids, NULL)
            + sweep (vms_dir, vm_ids, known_hosts);
  if (removed > 0)
    g_info ("removed %u orphaned image, kernel and VM directories", removed);
  return removed;
}
