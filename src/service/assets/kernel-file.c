/* Kernel files: telling a bzImage from an ELF vmlinux, reading the
 * release, finding the host's kernel (kernel-file.h). */
#include "kernel-file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "banger-error.h"

/* x86 boot protocol (Documentation/x86/boot.rst): "HdrS" at 0x202, and at
 * 0x20e a pointer (minus 0x200) to the NUL-terminated version string, which
 * starts with the release. */
#define BZ_MAGIC_OFFSET  0x202
#define BZ_VERSION_PTR   0x20e
#define BZ_HEADER_READ   0x8000
#define ELF_VERSION_SCAN (64 * 1024 * 1024)

const char *
banger_kernel_format_to_string (BangerKernelFormat format)
{
  switch (format) {
  case BANGER_KERNEL_FORMAT_BZIMAGE:
    return "bzImage";
  case BANGER_KERNEL_FORMAT_ELF:
    return "elf";
  default:
    return "unknown";
  }
}

static char *
release_from_version_string (const char *s, gsize max)
{
  gsize len = 0;

  /* "6.1.0-28-cloud-amd64 (debian-kernel@…) #1 SMP …": the first word. */
  while (len < max && s[len] != '\0' && s[len] != ' ' && g_ascii_isprint (s[len]))
    len++;
  return len > 0 ? g_strndup (s, len) : NULL;
}

/* An ELF vmlinux carries "Linux version <release> (" in its rodata. */
static char *
elf_release (int fd)
{
  static const char needle[] = "Linux version ";
  g_autofree char *buf = g_malloc (1 << 20);
  gsize carry = 0;
  goffset total = 0;

  while (total < ELF_VERSION_SCAN) {
    ssize_t n = read (fd, buf + carry, (1 << 20) - carry);
    if (n <= 0)
      break;
    total += n;
    gsize have = carry + (gsize)n;
    for (gsize i = 0; i + sizeof needle + 64 <= have; i++) {
      if (buf[i] == 'L' && memcmp (buf + i, needle, sizeof needle - 1) == 0) {
        char *r = release_from_version_string (buf + i + sizeof needle - 1, 64);
        if (r != NULL && g_ascii_isdigit (r[0]))
          return r;
        g_free (r);
      }
    }
    /* Keep a tail so a string split across reads is still found. */
    carry = MIN (have, sizeof needle + 64);
    memmove (buf, buf + have - carry, carry);
  }
  return NULL;
}

gboolean
banger_kernel_file_inspect (const char *path, BangerKernelFormat *format, char **release,
                            GError **error)
{
  g_autofree guchar *head = g_malloc0 (BZ_HEADER_READ + 1);
  ssize_t n;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  *format = BANGER_KERNEL_FORMAT_UNKNOWN;
  if (release)
    *release = NULL;
  if (fd < 0) {
    int saved = errno;
    g_set_error (error, BANGER_ERROR,
                 saved == ENOENT ? BANGER_ERROR_NOT_FOUND : BANGER_ERROR_INVALID_ARGUMENT,
                 "cannot read kernel %s: %s", path, g_strerror (saved));
    return FALSE;
  }
  n = read (fd, head, BZ_HEADER_READ);
  if (n >= 4 && memcmp (head, "\177ELF", 4) == 0) {
    *format = BANGER_KERNEL_FORMAT_ELF;
    if (release) {
      lseek (fd, 0, SEEK_SET);
      *release = elf_release (fd);
    }
    close (fd);
    return TRUE;
  }
  close (fd);
  if (n > BZ_VERSION_PTR + 2 && memcmp (head + BZ_MAGIC_OFFSET, "HdrS", 4) == 0) {
    guint ptr = head[BZ_VERSION_PTR] | (head[BZ_VERSION_PTR + 1] << 8);
    *format = BANGER_KERNEL_FORMAT_BZIMAGE;
    if (release && ptr != 0 && ptr + 0x200 < (guint)n)
      *release
          = release_from_version_string ((const char *)head + ptr + 0x200, (gsize)n - ptr - 0x200);
    return TRUE;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "%s is not a Linux kernel (neither a bzImage nor an ELF vmlinux)", path);
  return FALSE;
}

gboolean
banger_kernel_find_host (const char *boot_dir, const char *modules_dir, char **path_out,
                         char **release_out, GError **error)
{
  g_autoptr (GDir) dir = g_dir_open (boot_dir, 0, NULL);
  g_autofree char *best = NULL;
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *mods = NULL;
    const char *rel;

    if (!g_str_has_prefix (name, "vmlinuz-"))
      continue;
    rel = name + strlen ("vmlinuz-");
    mods = g_build_filename (modules_dir, rel, "modules.dep", NULL);
    if (!g_file_test (mods, G_FILE_TEST_EXISTS))
      continue;
    /* Newest by version order, as the boot loader would pick. */
    if (best == NULL || strverscmp (rel, best) > 0) {
      g_free (best);
      best = g_strdup (rel);
    }
  }
  if (best == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                 "no kernel found: looked for %s/vmlinuz-* with modules in %s (install "
                 "linux-image-cloud-amd64, or use banger kernel import)",
                 boot_dir, modules_dir);
    return FALSE;
  }
  if (path_out)
    *path_out = g_strdup_printf ("%s/vmlinuz-%s", boot_dir, best);
  if (release_out)
    *release_out = g_steal_pointer (&best);
  return TRUE;
}

gboolean
banger_kernel_needs_initramfs (const char *modules_dir, const char *release)
{
  g_autofree char *builtin = g_build_filename (modules_dir, release, "modules.builtin", NULL);
  g_autofree char *contents = NULL;

  if (!g_file_get_contents (builtin, &contents, NULL, NULL))
    return TRUE; /* unknown: an initramfs never hurts */
  return strstr (contents, "/virtio_blk.ko") == NULL;
}
