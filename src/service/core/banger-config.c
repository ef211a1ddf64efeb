/* BangerConfig: the one reader of bangerd's configuration file
 * (banger-config.h says which settings are read once and which on each use). */
#include "banger-config.h"

#include "validate.h"

struct _BangerConfig {
  gatomicrefcount ref;
  char *path;
  char *data_dir;
  char *default_image;
  char *default_kernel;
  guint dns_port;
  int jailer;
  gboolean warm_start;
  char *jail_base;
};

static GKeyFile *
read_file (const char *path, gboolean warn)
{
  GKeyFile *kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  if (path != NULL && !g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &error) && warn
      && !g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    g_warning ("cannot read %s: %s; using built-in defaults", path, error->message);
  return kf;
}

/* One [defaults] name; a broken value is reported and ignored. */
static char *
read_default (GKeyFile *kf, const char *path, const char *key, const char *fallback)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *value = g_key_file_get_string (kf, "defaults", key, &error);

  if (value == NULL) {
    if (!g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)
        && !g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
      g_warning ("%s: [defaults] %s: %s; using “%s”", path, key, error->message, fallback);
    return g_strdup (fallback);
  }
  g_strstrip (value);
  if (!banger_validate_name (key, value, &error)) {
    g_warning ("%s: [defaults] %s: %s; using “%s”", path, key, error->message, fallback);
    return g_strdup (fallback);
  }
  return g_steal_pointer (&value);
}

static guint
read_dns_port (GKeyFile *kf, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *value = g_key_file_get_string (kf, "dns", "port", NULL);
  guint64 port = 0;

  if (value == NULL)
    return BANGER_DNS_DEFAULT_PORT;
  g_strstrip (value);
  if (!g_ascii_string_to_unsigned (value, 10, 0, 65535, &port, &error)) {
    g_warning ("%s: [dns] port: %s; using %u", path, error->message, BANGER_DNS_DEFAULT_PORT);
    return BANGER_DNS_DEFAULT_PORT;
  }
  return (guint)port;
}

/* [firecracker]: whether VMs run under the jailer and where the helper's
 * jails are (chroot_base must equal the helper's [jail] chroot_base: the
 * helper answers LaunchJailed with a pid only). */
static void
read_firecracker (BangerConfig *self, GKeyFile *kf)
{
  g_autofree char *jailer = g_key_file_get_string (kf, "firecracker", "jailer", NULL);

  self->jailer = -1;
  self->jail_base = g_key_file_get_string (kf, "firecracker", "chroot_base", NULL);
  if (jailer != NULL) {
    g_strstrip (jailer);
    if (g_ascii_strcasecmp (jailer, "true") == 0 || g_str_equal (jailer, "1"))
      self->jailer = 1;
    else if (g_ascii_strcasecmp (jailer, "false") == 0 || g_str_equal (jailer, "0"))
      self->jailer = 0;
    else if (g_ascii_strcasecmp (jailer, "auto") != 0)
      g_warning ("%s: [firecracker] jailer=%s is not true, false or auto; using auto", self->path,
                 jailer);
  }
  if (self->jail_base == NULL || !g_path_is_absolute (self->jail_base)) {
    g_free (self->jail_base);
    self->jail_base = g_strdup (BANGER_DEFAULT_JAIL_BASE);
  }
}

/* [vm] warm_start: whether new VMs start from a snapshot of a booted guest
 * (docs/warm-start.md); on unless set to false. */
static gboolean
read_warm_start (GKeyFile *kf, const char *path)
{
  g_autofree char *value = g_key_file_get_string (kf, "vm", "warm_start", NULL);

  if (value == NULL)
    return TRUE;
  g_strstrip (value);
  if (g_ascii_strcasecmp (value, "false") == 0 || g_str_equal (value, "0"))
    return FALSE;
  if (g_ascii_strcasecmp (value, "true") != 0 && !g_str_equal (value, "1"))
    g_warning ("%s: [vm] warm_start=%s is not true or false; using true", path, value);
  return TRUE;
}

BangerConfig *
banger_config_load (const char *path, const char *data_dir)
{
  BangerConfig *self = g_new0 (BangerConfig, 1);
  g_autoptr (GKeyFile) kf = read_file (path, TRUE);

  g_atomic_ref_count_init (&self->ref);
  self->path = g_strdup (path);
  self->data_dir = g_strdup (data_dir);
  self->default_image = read_default (kf, path, "image", BANGER_DEFAULT_IMAGE);
  self->default_kernel = read_default (kf, path, "kernel", BANGER_DEFAULT_KERNEL);
  self->dns_port = read_dns_port (kf, path);
  read_firecracker (self, kf);
  self->warm_start = read_warm_start (kf, path);
  g_debug ("defaults: image %s, kernel %s", self->default_image, self->default_kernel);
  return self;
}

BangerConfig *
banger_config_ref (BangerConfig *self)
{
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

void
banger_config_unref (BangerConfig *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref))
    return;
  g_free (self->path);
  g_free (self->data_dir);
  g_free (self->default_image);
  g_free (self->default_kernel);
  g_free (self->jail_base);
  g_free (self);
}

const char *
banger_config_get_path (BangerConfig *self)
{
  return self->path;
}

const char *
banger_config_get_data_dir (BangerConfig *self)
{
  return self->data_dir;
}

const char *
banger_config_get_default_image (BangerConfig *self)
{
  return self->default_image;
}

const char *
banger_config_get_default_kernel (BangerConfig *self)
{
  return self->default_kernel;
}

guint
banger_config_get_dns_port (BangerConfig *self)
{
  return self->dns_port;
}

int
banger_config_get_jailer (BangerConfig *self)
{
  return self->jailer;
}

const char *
banger_config_get_jail_base (BangerConfig *self)
{
  return self->jail_base;
}

char *
banger_config_dup_catalog_url (BangerConfig *self)
{
  g_autoptr (GKeyFile) kf = read_file (self->path, FALSE);
  g_autofree char *url = g_key_file_get_string (kf, "catalog", "url", NULL);

  if (url != NULL && *g_strstrip (url) != '\0')
    return g_steal_pointer (&url);
  return NULL;
}

gboolean
banger_config_registry_is_insecure (BangerConfig *self, const char *host)
{
  g_autoptr (GKeyFile) kf = read_file (self->path, FALSE);
  g_auto (GStrv) list = g_key_file_get_string_list (kf, "registries", "insecure", NULL, NULL);

  for (guint i = 0; host != NULL && list != NULL && list[i] != NULL; i++) {
    g_autofree char *entry = g_strstrip (g_strdup (list[i]));
    if (g_ascii_strcasecmp (entry, host) == 0)
      return TRUE;
  }
  return FALSE;
}

gboolean
banger_config_get_warm_start (BangerConfig *self)
{
  return self->warm_start;
}
