#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BANGER_NAME_MAX 32
#define BANGER_VM_ID_LEN 16

#define BANGER_VCPUS_MIN 1
#define BANGER_VCPUS_MAX 64
#define BANGER_VCPUS_DEFAULT 2
#define BANGER_MEMORY_MIB_MIN 128
#define BANGER_MEMORY_MIB_MAX 262144
#define BANGER_MEMORY_MIB_DEFAULT 1024
#define BANGER_DISK_MIB_MIN 256
#define BANGER_DISK_MIB_MAX 4194304
#define BANGER_DISK_MIB_DEFAULT 8192

/* A VM, image or kernel name: it becomes a DNS label (<name>.vm) and part
 * of an object path, so: [a-z][a-z0-9-]{0,31}, not ending in '-'. */
gboolean banger_validate_name (const char *what, const char *name, GError **error);

/* A VM id: exactly 16 lower-case hex digits. */
gboolean banger_validate_vm_id (const char *id, GError **error);

/* A new random VM id (16 lower-case hex digits). */
char *banger_vm_id_new (void);

/* The validated, defaulted form of a CreateVM spec. */
typedef struct {
  char *name;
  char *image;  /* NULL: the manager's default */
  char *kernel; /* NULL: the image's or the manager's default */
  char *driver; /* NULL: chosen at start */
  guint vcpus;
  guint memory_mib;
  guint disk_mib;
} BangerVmSpec;

void banger_vm_spec_free (BangerVmSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerVmSpec, banger_vm_spec_free)

/* Parses a CreateVM a{sv}: unknown keys, wrong types and out-of-range
 * values are InvalidArgument errors naming the key. */
BangerVmSpec *banger_vm_spec_from_variant (GVariant *spec, GError **error);

/* Checks an a{sv} of options against the allowed keys and their types
 * (NULL-terminated pairs: key, type string). */
gboolean banger_validate_options (GVariant *options, const char *const *allowed_key_types,
                                  GError **error);

G_END_DECLS
