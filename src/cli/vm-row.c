#include "vm-row.h"

static char *
dup_string (GVariant *value)
{
  return g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) ? g_variant_dup_string (value, NULL)
                                                             : NULL;
}

static guint
get_uint32 (GVariant *value)
{
  return g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (value) : 0;
}

BangerVmRow *
banger_vm_row_new (GVariant *properties)
{
  BangerVmRow *row = g_new0 (BangerVmRow, 1);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  row->properties = g_variant_ref (properties);
  g_variant_iter_init (&iter, properties);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
    if (g_str_equal (key, "Name"))
      row->name = dup_string (value);
    else if (g_str_equal (key, "State"))
      row->state = dup_string (value);
    else if (g_str_equal (key, "Image"))
      row->image = dup_string (value);
    else if (g_str_equal (key, "IPv4"))
      row->ipv4 = dup_string (value);
    else if (g_str_equal (key, "VCPUs"))
      row->vcpus = get_uint32 (value);
    else if (g_str_equal (key, "MemoryMiB"))
      row->memory_mib = get_uint32 (value);
    else if (g_str_equal (key, "DiskMiB"))
      row->disk_mib = get_uint32 (value);
    else if (g_str_equal (key, "CreatedAt") && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
      row->created_at = g_variant_get_uint64 (value);
    g_variant_unref (value);
  }
  return row;
}

BangerVmRow *
banger_vm_row_new_columns (const char *name, const char *state, const char *image,
                           const char *ipv4, guint vcpus, guint memory_mib, guint disk_mib,
                           guint64 created_at)
{
  BangerVmRow *row = g_new0 (BangerVmRow, 1);

  row->name = g_strdup (name);
  row->state = g_strdup (state);
  row->image = g_strdup (image);
  row->ipv4 = g_strdup (ipv4);
  row->vcpus = vcpus;
  row->memory_mib = memory_mib;
  row->disk_mib = disk_mib;
  row->created_at = created_at;
  return row;
}

void
banger_vm_row_free (BangerVmRow *row)
{
  if (row == NULL)
    return;
  g_clear_pointer (&row->properties, g_variant_unref);
  g_free (row->name);
  g_free (row->state);
  g_free (row->image);
  g_free (row->ipv4);
  g_free (row);
}

int
banger_vm_row_compare (gconstpointer a, gconstpointer b)
{
  const BangerVmRow *ra = *(BangerVmRow *const *)a;
  const BangerVmRow *rb = *(BangerVmRow *const *)b;

  if (ra->created_at != rb->created_at)
    return ra->created_at < rb->created_at ? -1 : 1;
  return g_strcmp0 (ra->name, rb->name);
}
