#include "orphans.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "remove-tree.h"
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

static guint
sweep (const char *base, GHashTable *known)
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
  for (guint i = 0; i < images->len; i++)
    g_hash_table_add (image_ids, ((BangerImageRecord *)images->pdata[i])->id);
  for (guint i = 0; i < kernels->len; i++)
    g_hash_table_add (kernel_ids, ((BangerKernelRecord *)kernels->pdata[i])->id);
  removed = sweep (images_dir, image_ids) + sweep (kernels_dir, kernel_ids);
  if (removed > 0)
    g_info ("removed %u orphaned image and kernel directories", removed);
  return removed;
}
