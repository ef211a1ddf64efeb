/* The ELF vmlinux out of a bzImage, for Firecracker (kernel-unpack.h). */
#include "kernel-unpack.h"

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <lz4.h>
#include <lzma.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "banger-error.h"
#include "lazy-library.h"
#include "paths.h"

/* liblzma, libzstd and liblz4, loaded by the first kernel of their format
 * instead of linked: a kernel is unpacked once, when it is imported, and
 * linked they were mapped in every bangerd from its start (0.3 MiB of idle
 * RSS, docs/performance.md). Typed with the headers' declarations. */
typedef struct {
  __typeof__ (lzma_stream_decoder) *stream_decoder;
  __typeof__ (lzma_code) *code;
  __typeof__ (lzma_end) *end;
} Xz;
static Xz xz;
static const BangerLazySymbol xz_symbols[] = {
  { "lzma_stream_decoder", G_STRUCT_OFFSET (Xz, stream_decoder) },
  { "lzma_code", G_STRUCT_OFFSET (Xz, code) },
  { "lzma_end", G_STRUCT_OFFSET (Xz, end) },
};
static BangerLazyLibrary xz_library
    = { "liblzma", BANGER_LZMA_SONAME, xz_symbols, G_N_ELEMENTS (xz_symbols), &xz };

typedef struct {
  __typeof__ (ZSTD_createDStream) *create_dstream;
  __typeof__ (ZSTD_DStreamOutSize) *dstream_out_size;
  __typeof__ (ZSTD_initDStream) *init_dstream;
  __typeof__ (ZSTD_decompressStream) *decompress_stream;
  __typeof__ (ZSTD_isError) *is_error;
  __typeof__ (ZSTD_getErrorName) *get_error_name;
  __typeof__ (ZSTD_freeDStream) *free_dstream;
} Zstd;
static Zstd zstd;
static const BangerLazySymbol zstd_symbols[] = {
  { "ZSTD_createDStream", G_STRUCT_OFFSET (Zstd, create_dstream) },
  { "ZSTD_DStreamOutSize", G_STRUCT_OFFSET (Zstd, dstream_out_size) },
  { "ZSTD_initDStream", G_STRUCT_OFFSET (Zstd, init_dstream) },
  { "ZSTD_decompressStream", G_STRUCT_OFFSET (Zstd, decompress_stream) },
  { "ZSTD_isError", G_STRUCT_OFFSET (Zstd, is_error) },
  { "ZSTD_getErrorName", G_STRUCT_OFFSET (Zstd, get_error_name) },
  { "ZSTD_freeDStream", G_STRUCT_OFFSET (Zstd, free_dstream) },
};
static BangerLazyLibrary zstd_library
    = { "libzstd", BANGER_ZSTD_SONAME, zstd_symbols, G_N_ELEMENTS (zstd_symbols), &zstd };

typedef struct {
  __typeof__ (LZ4_compressBound) *compress_bound;
  __typeof__ (LZ4_decompress_safe) *decompress_safe;
} Lz4;
static Lz4 lz4;
static const BangerLazySymbol lz4_symbols[] = {
  { "LZ4_compressBound", G_STRUCT_OFFSET (Lz4, compress_bound) },
  { "LZ4_decompress_safe", G_STRUCT_OFFSET (Lz4, decompress_safe) },
};
static BangerLazyLibrary lz4_library
    = { "liblz4", BANGER_LZ4_SONAME, lz4_symbols, G_N_ELEMENTS (lz4_symbols), &lz4 };

/* Boot protocol offsets (Documentation/arch/x86/boot.rst). */
#define BZ_SETUP_SECTS  0x1f1
#define BZ_MAGIC_OFFSET 0x202
#define BZ_VERSION      0x206
#define BZ_PAYLOAD_OFFS 0x248
#define BZ_PAYLOAD_LEN  0x24c
#define BZ_MIN_VERSION  0x208 /* payload fields exist from 2.08 */
/* A vmlinux is tens of MiB; anything past this is a decompression bomb. */
#define MAX_VMLINUX (1ULL << 30)
/* The kernel's lz4 container ("legacy" frames, lib/decompress_unlz4.c):
 * a magic, then blocks of <u32 LE compressed size><data>, each at most
 * 8 MiB decompressed. liblz4 has the block decoder but no reader for this
 * old container (LZ4F only reads the newer frame format), so the few lines
 * that walk the blocks are written here. */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

typedef struct {
  const char *path; /* for errors */
  const guint8 *data;
  gsize len;
} Payload;

typedef struct {
  int fd;
  const char *path;
  guint64 written;
} Sink;

static guint32
le32 (const guint8 *p)
{
  return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

static gboolean
sink_write (Sink *s, const void *buf, gsize len, GError **error)
{
  const guint8 *p = buf;

  if (s->written + len > MAX_VMLINUX) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the kernel %s decompresses to more than %llu MiB", s->path, MAX_VMLINUX >> 20);
    return FALSE;
  }
  while (len > 0) {
    ssize_t n = write (s->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write %s: %s", s->path,
                   g_strerror (errno));
      return FALSE;
    }
    p += n;
    len -= (gsize)n;
    s->written += (guint64)n;
  }
  return TRUE;
}

static gboolean
corrupt (const Payload *p, const char *format, const char *why, GError **error)
{
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
               "the %s payload of the kernel %s is corrupt: %s", format, p->path, why);
  return FALSE;
}

static gboolean
unpack_gzip (const Payload *p, Sink *s, GCancellable *cancellable, GError **error)
{
  g_autoptr (GZlibDecompressor) z = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autofree guint8 *out = g_malloc (1 << 20);
  gsize pos = 0;

  for (;;) {
    gsize read = 0, written = 0;
    g_autoptr (GError) local = NULL;
    GConverterResult r
        = g_converter_convert (G_CONVERTER (z), p->data + pos, p->len - pos, out, 1 << 20,
                               G_CONVERTER_INPUT_AT_END, &read, &written, &local);
    if (r == G_CONVERTER_ERROR)
      return corrupt (p, "gzip", local->message, error);
    pos += read;
    if (!sink_write (s, out, written, error))
      return FALSE;
    /* The build appends the decompressed size after the gzip stream:
     * stop at the stream's end rather than read it as another member. */
    if (r == G_CONVERTER_FINISHED)
      return TRUE;
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      return FALSE;
  }
}

static gboolean
unpack_xz (const Payload *p, Sink *s, GCancellable *cancellable, GError **error)
{
  lzma_stream z = LZMA_STREAM_INIT;
  g_autofree guint8 *out = NULL;
  gboolean ok = FALSE;

  if (!banger_lazy_library_load (&xz_library, error))
    return FALSE;
  out = g_malloc (1 << 20);
  if (xz.stream_decoder (&z, UINT64_MAX, 0) != LZMA_OK)
    return corrupt (p, "xz", "cannot start the decoder", error);
  z.next_in = p->data;
  z.avail_in = p->len;
  for (;;) {
    lzma_ret r;

    z.next_out = out;
    z.avail_out = 1 << 20;
    r = xz.code (&z, LZMA_FINISH);
    if (!sink_write (s, out, (1 << 20) - z.avail_out, error))
      break;
    if (r == LZMA_STREAM_END) {
      ok = TRUE;
      break;
    }
    if (r != LZMA_OK) {
      g_autofree char *why = g_strdup_printf ("liblzma error %d", (int)r);
      corrupt (p, "xz", why, error);
      break;
    }
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      break;
  }
  xz.end (&z);
  return ok;
}

static gboolean
unpack_zstd (const Payload *p, Sink *s, GCancellable *cancellable, GError **error)
{
  ZSTD_DStream *z;
  g_autofree guint8 *out = NULL;
  ZSTD_inBuffer in = { p->data, p->len, 0 };
  gboolean ok = FALSE;

  if (!banger_lazy_library_load (&zstd_library, error))
    return FALSE;
  z = zstd.create_dstream ();
  out = g_malloc (zstd.dstream_out_size ());
  zstd.init_dstream (z);
  for (;;) {
    ZSTD_outBuffer o = { out, zstd.dstream_out_size (), 0 };
    size_t r = zstd.decompress_stream (z, &o, &in);

    if (zstd.is_error (r)) {
      corrupt (p, "zstd", zstd.get_error_name (r), error);
      break;
    }
    if (!sink_write (s, out, o.pos, error))
      break;
    /* 0: the frame is complete (what follows is the appended size). */
    if (r == 0) {
      ok = TRUE;
      break;
    }
    if (in.pos == in.size && o.pos == 0) {
      corrupt (p, "zstd", "truncated", error);
      break;
    }
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      break;
  }
  zstd.free_dstream (z);
  return ok;
}

static gboolean
unpack_lz4 (const Payload *p, Sink *s, GCancellable *cancellable, GError **error)
{
  g_autofree char *out = NULL;
  gsize pos = 4; /* after the magic */

  if (!banger_lazy_library_load (&lz4_library, error))
    return FALSE;
  out = g_malloc (LZ4_LEGACY_BLOCK);

  /* Four or fewer bytes left is the decompressed size the build appends. */
  while (p->len - pos > 4) {
    guint32 chunk = le32 (p->data + pos);
    int n;

    pos += 4;
    if (chunk == LZ4_LEGACY_MAGIC)
      continue; /* a concatenated stream starts again */
    if (chunk > (guint32)lz4.compress_bound (LZ4_LEGACY_BLOCK) || chunk > p->len - pos)
      return corrupt (p, "lz4", "a block runs past the payload", error);
    n = lz4.decompress_safe ((const char *)p->data + pos, out, (int)chunk, LZ4_LEGACY_BLOCK);
    if (n < 0)
      return corrupt (p, "lz4", "a block does not decode", error);
    pos += chunk;
    if (!sink_write (s, out, (gsize)n, error))
      return FALSE;
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      return FALSE;
  }
  return TRUE;
}

static const char *
payload_magic_format (const guint8 *d, gsize len)
{
  if (len >= 2 && d[0] == 0x1f && (d[1] == 0x8b || d[1] == 0x9e))
    return "gzip";
  if (len >= 6
      && memcmp (d,
                 "\xfd"
                 "7zXZ\0",
                 6)
             == 0)
    return "xz";
  if (len >= 4 && le32 (d) == 0xfd2fb528u)
    return "zstd";
  if (len >= 4 && le32 (d) == LZ4_LEGACY_MAGIC)
    return "lz4";
  if (len >= 3 && memcmp (d, "BZh", 3) == 0)
    return "bzip2";
  if (len >= 3 && d[0] == 0x5d && d[1] == 0 && d[2] == 0)
    return "lzma";
  if (len >= 4 && memcmp (d, "\x89LZO", 4) == 0)
    return "lzo";
  return NULL;
}

/* Finds the payload inside the mapped bzImage. */
static gboolean
find_payload (const char *path, const guint8 *d, gsize len, Payload *p, GError **error)
{
  guint setup_sects;
  guint16 version;
  guint64 start;
  guint32 offs, plen;

  if (len < BZ_PAYLOAD_LEN + 4 || memcmp (d + BZ_MAGIC_OFFSET, "HdrS", 4) != 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT, "%s is not a bzImage", path);
    return FALSE;
  }
  version = (guint16)(d[BZ_VERSION] | (d[BZ_VERSION + 1] << 8));
  if (version < BZ_MIN_VERSION) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "%s uses boot protocol %u.%02u, which does not say where its kernel payload is "
                 "(2.08 or later needed)",
                 path, version >> 8, version & 0xff);
    return FALSE;
  }
  /* 0 means 4 for historical reasons (boot.rst). */
  setup_sects = d[BZ_SETUP_SECTS] ? d[BZ_SETUP_SECTS] : 4;
  offs = le32 (d + BZ_PAYLOAD_OFFS);
  plen = le32 (d + BZ_PAYLOAD_LEN);
  start = (guint64)(setup_sects + 1) * 512 + offs;
  if (plen < 8 || start > len || plen > len - start) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the kernel payload of %s (offset %" G_GUINT64_FORMAT ", %u bytes) lies outside "
                 "the file",
                 path, start, plen);
    return FALSE;
  }
  p->path = path;
  p->data = d + start;
  p->len = plen;
  return TRUE;
}

char *
banger_kernel_payload_format (const char *bzimage, GError **error)
{
  g_autoptr (GMappedFile) map = g_mapped_file_new (bzimage, FALSE, error);
  Payload p;
  const char *format;

  if (map == NULL) {
    banger_error_convert (error);
    return NULL;
  }
  if (!find_payload (bzimage, (const guint8 *)g_mapped_file_get_contents (map),
                     g_mapped_file_get_length (map), &p, error))
    return NULL;
  format = payload_magic_format (p.data, p.len);
  if (format == NULL)
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the kernel payload of %s is in no compression format banger knows", bzimage);
  return g_strdup (format);
}

gboolean
banger_kernel_unpack_bzimage (const char *bzimage, const char *dest, GCancellable *cancellable,
                              GError **error)
{
  g_autoptr (GMappedFile) map = NULL;
  g_autofree char *tmp = NULL;
  const char *format;
  Payload p;
  Sink s = { -1, dest, 0 };
  guint8 elf[4] = { 0 };
  gboolean ok = FALSE;

  map = g_mapped_file_new (bzimage, FALSE, error);
  if (map == NULL) {
    g_prefix_error (error, "cannot read the kernel: ");
    banger_error_convert (error);
    return FALSE;
  }
  if (!find_payload (bzimage, (const guint8 *)g_mapped_file_get_contents (map),
                     g_mapped_file_get_length (map), &p, error))
    return FALSE;
  format = payload_magic_format (p.data, p.len);
  if (format == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the kernel payload of %s is in no compression format banger knows", bzimage);
    return FALSE;
  }

  tmp = g_strconcat (dest, ".unpack-XXXXXX", NULL);
  s.fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0644);
  if (s.fd < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot create %s: %s", tmp,
                 g_strerror (errno));
    return FALSE;
  }
  if (g_str_equal (format, "gzip"))
    ok = unpack_gzip (&p, &s, cancellable, error);
  else if (g_str_equal (format, "xz"))
    ok = unpack_xz (&p, &s, cancellable, error);
  else if (g_str_equal (format, "zstd"))
    ok = unpack_zstd (&p, &s, cancellable, error);
  else if (g_str_equal (format, "lz4"))
    ok = unpack_lz4 (&p, &s, cancellable, error);
  else
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_UNSUPPORTED,
                 "the kernel %s is compressed with %s; banger unpacks gzip, xz, zstd and lz4 "
                 "kernels (import an ELF vmlinux instead)",
                 bzimage, format);
  if (ok && (pread (s.fd, elf, sizeof elf, 0) != sizeof elf || memcmp (elf, "\177ELF", 4) != 0)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_INVALID_ARGUMENT,
                 "the %s payload of %s is not an ELF kernel", format, bzimage);
    ok = FALSE;
  }
  if (ok && fsync (s.fd) < 0) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_FAILED, "cannot write %s: %s", tmp,
                 g_strerror (errno));
    ok = FALSE;
  }
  close (s.fd);
  ok = banger_rename_into_place (tmp, dest, ok, error);
  if (ok)
    g_debug ("unpacked %s (%s) to %s: %" G_GUINT64_FORMAT " bytes", bzimage, format, dest,
             s.written);
  return ok;
}
