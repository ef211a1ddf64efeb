#pragma once

/* libsoup, loaded when first used instead of linked (lazy-library.h).
 *
 * Linked, libsoup is mapped in bangerd from the start, with Kerberos,
 * nghttp2, libpsl and brotli behind it: 1.1 MiB of an idle bangerd's RSS
 * for what only pulls, catalog and release downloads and the Firecracker
 * API use (docs/performance.md). Include this header instead of
 * <libsoup/soup.h>: every soup_*() call below goes through a table of the
 * header's own types, filled the first time one is made. Call
 * banger_soup_load() where an operation starts, so that a library that
 * cannot be loaded is an error of that operation. */

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The functions banger calls (adding one: here and a #define below). */
#define BANGER_SOUP_FUNCTIONS(X)                                                                   \
  X (soup_header_parse_param_list)                                                                 \
  X (soup_message_get_reason_phrase)                                                               \
  X (soup_message_get_request_headers)                                                             \
  X (soup_message_get_response_headers)                                                            \
  X (soup_message_get_status)                                                                      \
  X (soup_message_get_uri)                                                                         \
  X (soup_message_headers_get_content_length)                                                      \
  X (soup_message_headers_get_content_range)                                                       \
  X (soup_message_headers_get_content_type)                                                        \
  X (soup_message_headers_get_one)                                                                 \
  X (soup_message_headers_replace)                                                                 \
  X (soup_message_headers_set_range)                                                               \
  X (soup_message_new)                                                                             \
  X (soup_message_new_from_uri)                                                                    \
  X (soup_message_set_flags)                                                                       \
  X (soup_message_set_request_body_from_bytes)                                                     \
  X (soup_session_new_with_options)                                                                \
  X (soup_session_send)                                                                            \
  X (soup_session_send_and_read)

#define BANGER_SOUP_MEMBER(f) __typeof__ (f) *fn_##f;
typedef struct {
  BANGER_SOUP_FUNCTIONS (BANGER_SOUP_MEMBER)
} BangerSoupApi;
#undef BANGER_SOUP_MEMBER

/* Loads libsoup if it is not yet; FALSE with an Unsupported error naming it
 * if it cannot be. */
gboolean banger_soup_load (GError **error);

/* The table, loading the library first if needed (lazy-library.h). */
const BangerSoupApi *banger_soup_api (void);

#define soup_header_parse_param_list      (banger_soup_api ()->fn_soup_header_parse_param_list)
#define soup_message_get_reason_phrase    (banger_soup_api ()->fn_soup_message_get_reason_phrase)
#define soup_message_get_request_headers  (banger_soup_api ()->fn_soup_message_get_request_headers)
#define soup_message_get_response_headers (banger_soup_api ()->fn_soup_message_get_response_headers)
#define soup_message_get_status           (banger_soup_api ()->fn_soup_message_get_status)
#define soup_message_get_uri              (banger_soup_api ()->fn_soup_message_get_uri)
#define soup_message_headers_get_content_length                                                    \
  (banger_soup_api ()->fn_soup_message_headers_get_content_length)
#define soup_message_headers_get_content_range                                                     \
  (banger_soup_api ()->fn_soup_message_headers_get_content_range)
#define soup_message_headers_get_content_type                                                      \
  (banger_soup_api ()->fn_soup_message_headers_get_content_type)
#define soup_message_headers_get_one   (banger_soup_api ()->fn_soup_message_headers_get_one)
#define soup_message_headers_replace   (banger_soup_api ()->fn_soup_message_headers_replace)
#define soup_message_headers_set_range (banger_soup_api ()->fn_soup_message_headers_set_range)
#define soup_message_new               (banger_soup_api ()->fn_soup_message_new)
#define soup_message_new_from_uri      (banger_soup_api ()->fn_soup_message_new_from_uri)
#define soup_message_set_flags         (banger_soup_api ()->fn_soup_message_set_flags)
#define soup_message_set_request_body_from_bytes                                                   \
  (banger_soup_api ()->fn_soup_message_set_request_body_from_bytes)
#define soup_session_new_with_options (banger_soup_api ()->fn_soup_session_new_with_options)
#define soup_session_send             (banger_soup_api ()->fn_soup_session_send)
#define soup_session_send_and_read    (banger_soup_api ()->fn_soup_session_send_and_read)

G_END_DECLS
