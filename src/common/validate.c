#include "validate.h"

#include "banger-error.h"

gboolean
banger_validate_name (const char *what, const char *name, GError **error)
{
  gsize len;

  if (name == NULL || *name == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s name is empty", what);
    return FALSE;
  }
  len = strlen (name);
  if (len > BANGER_NAME_MAX) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s name “%.40s…” is too long (%zu characters, at most %d)", what, name, len,
                 BANGER_NAME_MAX);
    return FALSE;
  }
  if (!g_ascii_islower (name[0])) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s name “%s” must start with a lower-case letter", what, name);
    return FALSE;
  }
  for (gsize i = 0; i < len; i++) {
    char c = name[i];
    if (!(g_ascii_islower (c) || g_ascii_isdigit (c) || c == '-')) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "%s name “%s” may only hold a-z, 0-9 and “-” (found “%c”)", what, name,
                   g_ascii_isprint (c) ? c : '?');
      return FALSE;
    }
  }
  if (name[len - 1] == '-') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "%s name “%s” must not end with “-”", what, name);
    return FALSE;
  }
  return TRUE;
}

gboolean
banger_validate_vm_id (const char *id, GError **error)
{
  if (id == NULL || strlen (id) != BANGER_VM_ID_LEN) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "VM id “%s” must be %d hexadecimal digits", id ? id : "", BANGER_VM_ID_LEN);
    return FALSE;
  }
  for (const char *p = id; *p; p++) {
    if (!(g_ascii_isdigit (*p) || (*p >= 'a' && *p <= 'f'))) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "VM id “%s” must be lower-case hexadecimal digits", id);
      return FALSE;
    }
  }
  return TRUE;
}

char *
banger_vm_id_new (void)
{
  return g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
}

void
banger_vm_spec_free (BangerVmSpec *spec)
{
  if (spec == NULL)
    return;
  g_free (spec->name);
  g_free (spec->image);
  g_free (spec->kernel);
  g_free (spec->driver);
  g_free (spec);
}

static gboolean
check_type (const char *key, GVariant *value, const GVariantType *type, GError **error)
{
  if (!g_variant_is_of_type (value, type)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” must be of type “%s”, not “%s”", key, (const char *) type,
                 g_variant_get_type_string (value));
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_range (const char *key, guint value, guint min, guint max, const char *unit, GError **error)
{
  if (value < min || value > max) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "“%s” is %u%s, must be between %u and %u%s", key, value, unit, min, max, unit);
    return FALSE;
  }
  return TRUE;
}

BangerVmSpec *
banger_vm_spec_from_variant (GVariant *spec, GError **error)
{
  g_autoptr (BangerVmSpec) out = g_new0 (BangerVmSpec, 1);
  GVariantIter iter;
  const char *key;
  GVariant *raw;

  if (spec == NULL || !g_variant_is_of_type (spec, G_VARIANT_TYPE_VARDICT)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "VM spec must be an a{sv}");
    return NULL;
  }

  out->vcpus = BANGER_VCPUS_DEFAULT;
  out->memory_mib = BANGER_MEMORY_MIB_DEFAULT;
  out->disk_mib = BANGER_DISK_MIB_DEFAULT;

  g_variant_iter_init (&iter, spec);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &raw)) {
    g_autoptr (GVariant) value = raw;

    if (g_str_equal (key, "name") || g_str_equal (key, "image") || g_str_equal (key, "kernel")) {
      const char *s;
      if (!check_type (key, value, G_VARIANT_TYPE_STRING, error))
        return NULL;
      s = g_variant_get_string (value, NULL);
      if (g_str_equal (key, "name")) {
        if (!banger_validate_name ("VM", s, error))
          return NULL;
        g_free (out->name);
        out->name = g_strdup (s);
      } else if (g_str_equal (key, "image")) {
        if (!banger_validate_name ("image", s, error))
          return NULL;
        g_free (out->image);
        out->image = g_strdup (s);
      } else {
        if (!banger_validate_name ("kernel", s, error))
          return NULL;
        g_free (out->kernel);
        out->kernel = g_strdup (s);
      }
    } else if (g_str_equal (key, "driver")) {
      const char *s;
      if (!check_type (key, value, G_VARIANT_TYPE_STRING, error))
        return NULL;
      s = g_variant_get_string (value, NULL);
      if (!g_str_equal (s, "qemu") && !g_str_equal (s, "firecracker")) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                     "“driver” is “%s”, must be “qemu” or “firecracker”", s);
        return NULL;
      }
      g_free (out->driver);
      out->driver = g_strdup (s);
    } else if (g_str_equal (key, "vcpus")) {
      if (!check_type (key, value, G_VARIANT_TYPE_UINT32, error))
        return NULL;
      out->vcpus = g_variant_get_uint32 (value);
      if (!check_range (key, out->vcpus, BANGER_VCPUS_MIN, BANGER_VCPUS_MAX, "", error))
        return NULL;
    } else if (g_str_equal (key, "memory_mib")) {
      if (!check_type (key, value, G_VARIANT_TYPE_UINT32, error))
        return NULL;
      out->memory_mib = g_variant_get_uint32 (value);
      if (!check_range (key, out->memory_mib, BANGER_MEMORY_MIB_MIN, BANGER_MEMORY_MIB_MAX, " MiB",
                        error))
        return NULL;
    } else if (g_str_equal (key, "disk_mib")) {
      if (!check_type (key, value, G_VARIANT_TYPE_UINT32, error))
        return NULL;
      out->disk_mib = g_variant_get_uint32 (value);
      if (!check_range (key, out->disk_mib, BANGER_DISK_MIB_MIN, BANGER_DISK_MIB_MAX, " MiB",
                        error))
        return NULL;
    } else {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                   "unknown key “%s” in VM spec (known: name, image, kernel, driver, vcpus, "
                   "memory_mib, disk_mib)",
                   key);
      return NULL;
    }
  }

  if (out->name == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "VM spec has no “name”");
    return NULL;
  }
  return g_steal_pointer (&out);
}

gboolean
banger_validate_options (GVariant *options, const char *const *allowed, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *raw;

  if (options == NULL || !g_variant_is_of_type (options, G_VARIANT_TYPE_VARDICT)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "options must be an a{sv}");
    return FALSE;
  }
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &raw)) {
    g_autoptr (GVariant) value = raw;
    gboolean known = FALSE;

    for (guint i = 0; allowed != NULL && allowed[i] != NULL; i += 2) {
      if (g_str_equal (allowed[i], key)) {
        if (!check_type (key, value, G_VARIANT_TYPE (allowed[i + 1]), error))
          return FALSE;
        known = TRUE;
        break;
      }
    }
    if (!known) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "unknown option “%s”", key);
      return FALSE;
    }
  }
  return TRUE;
}
