/* Module load order from a kernel's modules.dep. libkmod does this too, but
 * it is built to act on the running kernel (and reads the host's
 * /etc/modprobe.d); for a guest's module tree the text indexes depmod writes
 * are enough, and this way nothing of the host's configuration leaks in. */

#include "config.h"

#include "kmod-deps.h"

#include <fnmatch.h>
#include <string.h>

#include "banger-error.h"

typedef struct {
  char *path; /* relative to the kernel's module directory */
  GStrv deps; /* as modules.dep lists them: last one loads first */
  GStrv pre;  /* soft dependencies (names or aliases) */
  GStrv post;
} Module;

typedef struct {
  GHashTable *modules; /* normalised name → Module */
  GHashTable *builtin; /* normalised names */
  GPtrArray *aliases;  /* pairs: pattern, module name */
  GHashTable *seen;    /* paths already in the order */
  GHashTable *visited; /* names already walked */
  GPtrArray *order;
} Resolver;

static void
module_free (gpointer data)
{
  Module *m = data;
  g_free (m->path);
  g_strfreev (m->deps);
  g_strfreev (m->pre);
  g_strfreev (m->post);
  g_free (m);
}

char *
banger_kmod_normalize_name (const char *name)
{
  char *out = g_strdup (name);
  g_strdelimit (out, "-", '_');
  return out;
}

/* "kernel/drivers/char/hw_random/virtio-rng.ko.xz" → "virtio_rng" */
static char *
name_from_path (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strstr (base, ".ko");

  if (dot != NULL)
    *dot = '\0';
  return banger_kmod_normalize_name (base);
}

static gboolean
read_lines (const char *dir, const char *file, gboolean required, GStrv *lines_out, GError **error)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) local_error = NULL;

  if (!g_file_get_contents (path, &contents, NULL, &local_error)) {
    if (!required && g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      *lines_out = g_new0 (char *, 1);
      return TRUE;
    }
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND, "%s", local_error->message);
    return FALSE;
  }
  *lines_out = g_strsplit (contents, "\n", -1);
  return TRUE;
}

static gboolean
load_indexes (Resolver *r, const char *dir, GError **error)
{
  g_auto (GStrv) dep_lines = NULL;
  g_auto (GStrv) builtin_lines = NULL;
  g_auto (GStrv) alias_lines = NULL;
  g_auto (GStrv) softdep_lines = NULL;

  if (!read_lines (dir, "modules.dep", TRUE, &dep_lines, error)
      || !read_lines (dir, "modules.builtin", FALSE, &builtin_lines, error)
      || !read_lines (dir, "modules.alias", FALSE, &alias_lines, error)
      || !read_lines (dir, "modules.softdep", FALSE, &softdep_lines, error))
    return FALSE;

  for (guint i = 0; dep_lines[i] != NULL; i++) {
    char *colon = strchr (dep_lines[i], ':');
    Module *m;

    if (colon == NULL)
      continue;
    *colon = '\0';
    m = g_new0 (Module, 1);
    m->path = g_strdup (g_strstrip (dep_lines[i]));
    m->deps = g_strsplit_set (g_strstrip (colon + 1), " \t", -1);
    /* g_strsplit_set of "" gives one empty string; drop empties. */
    if (m->deps[0] != NULL && m->deps[0][0] == '\0') {
      g_strfreev (m->deps);
      m->deps = g_new0 (char *, 1);
    }
    g_hash_table_replace (r->modules, name_from_path (m->path), m);
  }

  for (guint i = 0; builtin_lines[i] != NULL; i++) {
    if (builtin_lines[i][0] != '\0')
      g_hash_table_add (r->builtin, name_from_path (g_strstrip (builtin_lines[i])));
  }

  for (guint i = 0; alias_lines[i] != NULL; i++) {
    g_auto (GStrv) tok = g_strsplit_set (g_strstrip (alias_lines[i]), " \t", -1);
    if (g_strv_length (tok) != 3 || !g_str_equal (tok[0], "alias"))
      continue;
    g_ptr_array_add (r->aliases, banger_kmod_normalize_name (tok[1]));
    g_ptr_array_add (r->aliases, banger_kmod_normalize_name (tok[2]));
  }

  /* "softdep NAME pre: A B post: C"; words before "pre:"/"post:" are
   * ignored, as kmod does. */
  for (guint i = 0; softdep_lines[i] != NULL; i++) {
    g_auto (GStrv) tok = g_strsplit_set (g_strstrip (softdep_lines[i]), " \t", -1);
    g_autoptr (GPtrArray) pre = g_ptr_array_new ();
    g_autoptr (GPtrArray) post = g_ptr_array_new ();
    g_autofree char *name = NULL;
    GPtrArray *mode = NULL;
    Module *m;

    if (g_strv_length (tok) < 3 || !g_str_equal (tok[0], "softdep"))
      continue;
    name = banger_kmod_normalize_name (tok[1]);
    m = g_hash_table_lookup (r->modules, name);
    if (m == NULL)
      continue;
    for (guint j = 2; tok[j] != NULL; j++) {
      if (g_str_equal (tok[j], "pre:"))
        mode = pre;
      else if (g_str_equal (tok[j], "post:"))
        mode = post;
      else if (mode != NULL && tok[j][0] != '\0')
        g_ptr_array_add (mode, banger_kmod_normalize_name (tok[j]));
    }
    g_ptr_array_add (pre, NULL);
    g_ptr_array_add (post, NULL);
    g_strfreev (m->pre);
    g_strfreev (m->post);
    m->pre = (GStrv)g_ptr_array_free (g_steal_pointer (&pre), FALSE);
    m->post = (GStrv)g_ptr_array_free (g_steal_pointer (&post), FALSE);
  }
  return TRUE;
}

/* The module names @name stands for: itself, or every module an alias
 * pattern of modules.alias matching it names. Empty if it is built in. */
static gboolean
lookup_names (Resolver *r, const char *name, GPtrArray *out)
{
  if (g_hash_table_contains (r->modules, name)) {
    g_ptr_array_add (out, g_strdup (name));
    return TRUE;
  }
  if (g_hash_table_contains (r->builtin, name))
    return TRUE;
  for (guint i = 0; i + 1 < r->aliases->len; i += 2) {
    const char *pattern = g_ptr_array_index (r->aliases, i);
    const char *target = g_ptr_array_index (r->aliases, i + 1);

    if (fnmatch (pattern, name, 0) == 0
        && (g_hash_table_contains (r->modules, target)
            || g_hash_table_contains (r->builtin, target)))
      g_ptr_array_add (out, g_strdup (target));
  }
  return out->len > 0 || FALSE;
}

static void probe (Resolver *r, const char *name);

static void
append (Resolver *r, const Module *m)
{
  if (g_hash_table_add (r->seen, g_strdup (m->path)))
    g_ptr_array_add (r->order, g_strdup (m->path));
}

/* kmod's __kmod_module_fill_softdep(): pre soft deps, the module, post. */
static void
fill_softdep (Resolver *r, const Module *m)
{
  for (guint i = 0; m->pre != NULL && m->pre[i] != NULL; i++)
    probe (r, m->pre[i]);
  append (r, m);
  for (guint i = 0; m->post != NULL && m->post[i] != NULL; i++)
    probe (r, m->post[i]);
}

/* kmod's __kmod_module_get_probe_list(): the dependencies in load order
 * (modules.dep lists the deepest last), then the module. A soft dependency
 * that cannot be found is skipped, as modprobe does. */
static void
probe (Resolver *r, const char *name)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  lookup_names (r, name, names);
  for (guint n = 0; n < names->len; n++) {
    const char *real = g_ptr_array_index (names, n);
    Module *m = g_hash_table_lookup (r->modules, real);
    guint ndeps;

    if (m == NULL || !g_hash_table_add (r->visited, g_strdup (real)))
      continue;
    ndeps = g_strv_length (m->deps);
    for (guint i = ndeps; i > 0; i--) {
      g_autofree char *dep_name = name_from_path (m->deps[i - 1]);
      Module *dep = g_hash_table_lookup (r->modules, dep_name);

      if (dep != NULL)
        fill_softdep (r, dep);
    }
    fill_softdep (r, m);
  }
}

GPtrArray *
banger_kmod_resolve_order (const char *modules_root, const char *kver, const char *const *modules,
                           GError **error)
{
  g_autofree char *dir = g_build_filename (modules_root, kver, NULL);
  g_autoptr (GHashTable) mods
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, module_free);
  g_autoptr (GHashTable) builtin = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) aliases = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) visited = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) order = g_ptr_array_new_with_free_func (g_free);
  Resolver r = { mods, builtin, aliases, seen, visited, order };

  if (!load_indexes (&r, dir, error))
    return NULL;

  /* Every name must exist before anything is resolved, so the error names
   * the first missing one whatever the order. */
  for (guint i = 0; modules[i] != NULL; i++) {
    g_autofree char *name = banger_kmod_normalize_name (modules[i]);
    g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

    if (!lookup_names (&r, name, names) && !g_hash_table_contains (builtin, name)) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                   "kernel module “%s” not found for kernel %s in %s", modules[i], kver, dir);
      return NULL;
    }
  }
  for (guint i = 0; modules[i] != NULL; i++) {
    g_autofree char *name = banger_kmod_normalize_name (modules[i]);
    probe (&r, name);
  }
  return g_steal_pointer (&order);
}
