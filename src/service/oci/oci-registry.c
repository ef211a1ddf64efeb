#include "config.h"

#include "oci-registry.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "banger-error.h"
#include "http-session.h"
#include "paths.h"
#include "soup-api.h"

#define MAX_MANIFEST_BYTES (4 * 1024 * 1024)
#define MAX_TOKEN_BYTES    (1024 * 1024)
#define MAX_ATTEMPTS       4
#define MAX_REDIRECTS      5
#define CHUNK              (128 * 1024)

struct _BangerOciRegistry {
  char *registry; /* as in the reference: credentials are filed under it */
  char *host;     /* where the API is served */
  char *repository;
  gboolean allow_http;
  gboolean insecure;
  GAsyncQueue *sessions; /* idle SoupSessions */

  GMutex lock;  /* guards the fields below */
  char *scheme; /* "https", or "http" once HTTPS failed on an allowed host */
  char *authorization;
  char *basic; /* base64 user:password, NULL for anonymous */
};

/* ---- configuration ---- */

static char *
host_without_port (const char *host)
{
  if (host[0] == '[') {
    const char *end = strchr (host, ']');
    return end ? g_strndup (host + 1, end - host - 1) : g_strdup (host);
  }
  const char *colon = strrchr (host, ':');
  if (colon != NULL && strchr (host, ':') == colon)
    return g_strndup (host, colon - host);
  return g_strdup (host);
}

static gboolean
host_is_loopback (const char *host)
{
  g_autofree char *name = host_without_port (host);
  g_autoptr (GInetAddress) addr = g_inet_address_new_from_string (name);

  if (g_ascii_strcasecmp (name, "localhost") == 0)
    return TRUE;
  return addr != NULL && g_inet_address_get_is_loopback (addr);
}

gboolean
banger_oci_host_allows_http (BangerConfig *config, const char *host)
{
  if (host_is_loopback (host))
    return TRUE;
  return config != NULL && banger_config_registry_is_insecure (config, host);
}

/* "https://index.docker.io/v1/" → "index.docker.io"; "quay.io/org/repo"
 * → "quay.io". Auth files key entries in all these forms. */
static char *
auth_key_host (const char *key)
{
  const char *p = key;
  if (g_str_has_prefix (p, "https://"))
    p += 8;
  else if (g_str_has_prefix (p, "http://"))
    p += 7;
  const char *slash = strchr (p, '/');
  return slash ? g_strndup (p, slash - p) : g_strdup (p);
}

static gboolean
registry_matches (const char *registry, const char *key_host)
{
  static const char *const docker[]
      = { "docker.io", "index.docker.io", "registry-1.docker.io", NULL };
  if (g_ascii_strcasecmp (registry, key_host) == 0)
    return TRUE;
  return g_strv_contains (docker, registry) && g_strv_contains (docker, key_host);
}

static char *
credentials_from_file (const char *path, const char *registry)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *auths;
  g_autoptr (GList) members = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  if (!json_parser_load_from_file (parser, path, NULL)) {
    g_warning ("ignoring %s: not JSON", path);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root)
      || !json_object_has_member (json_node_get_object (root), "auths"))
    return NULL;
  auths = json_object_get_object_member (json_node_get_object (root), "auths");
  if (auths == NULL)
    return NULL;
  members = json_object_get_members (auths);
  for (GList *l = members; l != NULL; l = l->next) {
    g_autofree char *key_host = auth_key_host (l->data);
    JsonNode *entry = json_object_get_member (auths, l->data);
    if (!registry_matches (registry, key_host) || !JSON_NODE_HOLDS_OBJECT (entry))
      continue;
    const char *auth
        = json_object_get_string_member_with_default (json_node_get_object (entry), "auth", NULL);
    if (auth != NULL && *auth != '\0')
      return g_strdup (auth);
  }
  return NULL;
}

char *
banger_oci_lookup_credentials (const char *registry)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  if (g_getenv ("REGISTRY_AUTH_FILE") != NULL)
    g_ptr_array_add (files, g_strdup (g_getenv ("REGISTRY_AUTH_FILE")));
  if (g_getenv ("XDG_RUNTIME_DIR") != NULL)
    g_ptr_array_add (
        files, g_build_filename (g_getenv ("XDG_RUNTIME_DIR"), "containers", "auth.json", NULL));
  if (g_getenv ("XDG_CONFIG_HOME") != NULL)
    g_ptr_array_add (
        files, g_build_filename (g_getenv ("XDG_CONFIG_HOME"), "containers", "auth.json", NULL));
  else
    g_ptr_array_add (
        files, g_build_filename (g_get_home_dir (), ".config", "containers", "auth.json", NULL));
  g_ptr_array_add (files, g_build_filename (g_get_home_dir (), ".docker", "config.json", NULL));
  for (guint i = 0; i < files->len; i++) {
    char *auth = credentials_from_file (files->pdata[i], registry);
    if (auth != NULL) {
      g_debug ("credentials for %s from %s", registry, (char *)files->pdata[i]);
      return auth;
    }
  }
  return NULL;
}

/* ---- the client ---- */

BangerOciRegistry *
banger_oci_registry_new (const BangerOciReference *ref, gboolean insecure, BangerConfig *config,
                         GError **error)
{
  BangerOciRegistry *self;

  if (!banger_soup_load (error))
    return NULL;
  self = g_new0 (BangerOciRegistry, 1);
  self->registry = g_strdup (ref->registry);
  self->host = g_strdup (banger_oci_reference_api_host (ref));
  self->repository = g_strdup (ref->repository);
  self->insecure = insecure;
  self->allow_http = insecure || banger_oci_host_allows_http (config, self->host);
  self->sessions = g_async_queue_new_full (g_object_unref);
  self->scheme = g_strdup ("https");
  self->basic = banger_oci_lookup_credentials (self->registry);
  g_mutex_init (&self->lock);
  return self;
}

void
banger_oci_registry_free (BangerOciRegistry *self)
{
  if (self == NULL)
    return;
  g_async_queue_unref (self->sessions);
  g_mutex_clear (&self->lock);
  g_free (self->registry);
  g_free (self->host);
  g_free (self->repository);
  g_free (self->scheme);
  g_free (self->authorization);
  if (self->basic != NULL)
    memset (self->basic, 0, strlen (self->basic));
  g_free (self->basic);
  g_free (self);
}

static SoupSession *
session_get (BangerOciRegistry *self)
{
  SoupSession *session = g_async_queue_try_pop (self->sessions);
  if (session != NULL)
    return session;
  return banger_http_session_new ();
}

static void
session_put (BangerOciRegistry *self, SoupSession *session)
{
  g_async_queue_push (self->sessions, session);
}

static gboolean
accept_any_certificate (SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                        gpointer user_data)
{
  (void)msg, (void)cert, (void)errors, (void)user_data;
  return TRUE;
}

static char *
dup_locked (BangerOciRegistry *self, char **field)
{
  g_mutex_lock (&self->lock);
  char *v = g_strdup (*field);
  g_mutex_unlock (&self->lock);
  return v;
}

/* Waits @ms unless cancelled first: the backoff between retries. */
static gboolean
backoff_wait (guint ms, GCancellable *cancellable, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)ms * 1000;
  while (g_get_monotonic_time () < deadline) {
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      return FALSE;
    g_usleep (MIN (50000, deadline - g_get_monotonic_time ()));
  }
  return TRUE;
}

static gboolean
is_retryable_status (guint status)
{
  return status == 429 || (status >= 500 && status <= 599);
}

static GBytes *
read_all (GInputStream *in, gsize limit, const char *what, GCancellable *cancellable,
          GError **error)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 chunk[16384];

  for (;;) {
    gssize n = g_input_stream_read (in, chunk, sizeof chunk, cancellable, error);
    if (n < 0)
      return NULL;
    if (n == 0)
      break;
    if (buf->len + (gsize)n > limit) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                   "%s is larger than %" G_GSIZE_FORMAT " bytes", what, limit);
      return NULL;
    }
    g_byte_array_append (buf, chunk, n);
  }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

/* The registry's own error text ({"errors":[{"code","message"}]}), if any. */
static char *
registry_error_text (GInputStream *in, GCancellable *cancellable)
{
  g_autoptr (GBytes) body = read_all (in, 64 * 1024, "error", cancellable, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonArray *errors;

  if (body == NULL
      || !json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                      g_bytes_get_size (body), NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root)
      || !json_object_has_member (json_node_get_object (root), "errors"))
    return NULL;
  errors = json_object_get_array_member (json_node_get_object (root), "errors");
  if (errors == NULL || json_array_get_length (errors) == 0)
    return NULL;
  JsonObject *e = json_array_get_object_element (errors, 0);
  if (e == NULL)
    return NULL;
  return g_strdup_printf ("%s: %s", json_object_get_string_member_with_default (e, "code", "?"),
                          json_object_get_string_member_with_default (e, "message", ""));
}

/* Asks the token endpoint of a Bearer challenge for a pull token. */
static gboolean
fetch_token (BangerOciRegistry *self, SoupSession *session, const char *challenge,
             GCancellable *cancellable, GError **error)
{
  g_autoptr (GHashTable) params = soup_header_parse_param_list (challenge + strlen ("Bearer"));
  const char *realm = g_hash_table_lookup (params, "realm");
  const char *service = g_hash_table_lookup (params, "service");
  const char *scope = g_hash_table_lookup (params, "scope");
  g_autofree char *own_scope = g_strdup_printf ("repository:%s:pull", self->repository);
  g_autoptr (GUri) realm_uri = NULL;
  g_autoptr (GString) url = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *basic = dup_locked (self, &self->basic);
  JsonNode *root;
  const char *token;
  guint status;

  if (realm == NULL || (realm_uri = g_uri_parse (realm, G_URI_FLAGS_NONE, NULL)) == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "registry %s sent a Bearer challenge without a usable realm", self->host);
    return FALSE;
  }
  /* Credentials only go to a token endpoint over TLS, unless the endpoint
   * is one where plain HTTP is allowed anyway. */
  if (g_strcmp0 (g_uri_get_scheme (realm_uri), "https") != 0
      && !(g_strcmp0 (g_uri_get_scheme (realm_uri), "http") == 0
           && (self->allow_http || host_is_loopback (g_uri_get_host (realm_uri))))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "registry %s: refusing the token endpoint %s (not HTTPS)", self->host, realm);
    return FALSE;
  }
  url = g_string_new (realm);
  g_string_append_c (url, strchr (realm, '?') ? '&' : '?');
  if (service != NULL) {
    g_autofree char *e = g_uri_escape_string (service, NULL, FALSE);
    g_string_append_printf (url, "service=%s&", e);
  }
  {
    g_autofree char *e = g_uri_escape_string (scope ? scope : own_scope, NULL, FALSE);
    g_string_append_printf (url, "scope=%s", e);
  }
  msg = soup_message_new ("GET", url->str);
  if (msg == NULL) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY, "registry %s: bad token realm %s",
                 self->host, realm);
    return FALSE;
  }
  if (self->insecure)
    g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  if (basic != NULL) {
    g_autofree char *h = g_strdup_printf ("Basic %s", basic);
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", h);
  }
  in = soup_session_send (session, msg, cancellable, error);
  if (in == NULL) {
    g_prefix_error (error, "token endpoint %s: ", realm);
    return FALSE;
  }
  status = soup_message_get_status (msg);
  if (status == 401 || status == 403) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                 "the token server of registry %s refused %s (%u %s)", self->host,
                 basic ? "the credentials from the auth file" : "an anonymous pull", status,
                 soup_message_get_reason_phrase (msg));
    return FALSE;
  }
  if (status != 200) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "the token server of registry %s answered %u %s", self->host, status,
                 soup_message_get_reason_phrase (msg));
    return FALSE;
  }
  body = read_all (in, MAX_TOKEN_BYTES, "token answer", cancellable, error);
  if (body == NULL)
    return FALSE;
  if (!json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                   NULL)
      || !JSON_NODE_HOLDS_OBJECT (root = json_parser_get_root (parser))) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "the token server of registry %s sent something that is not JSON", self->host);
    return FALSE;
  }
  token = json_object_get_string_member_with_default (json_node_get_object (root), "token", NULL);
  if (token == NULL)
    token = json_object_get_string_member_with_default (json_node_get_object (root), "access_token",
                                                        NULL);
  if (token == NULL || *token == '\0') {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                 "the token server of registry %s sent no token", self->host);
    return FALSE;
  }
  g_mutex_lock (&self->lock);
  g_free (self->authorization);
  self->authorization = g_strdup_printf ("Bearer %s", token);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
handle_challenge (BangerOciRegistry *self, SoupSession *session, SoupMessage *msg, const char *what,
                  GCancellable *cancellable, GError **error)
{
  const char *challenge
      = soup_message_headers_get_one (soup_message_get_response_headers (msg), "WWW-Authenticate");

  if (challenge != NULL && g_ascii_strncasecmp (challenge, "Bearer", 6) == 0)
    return fetch_token (self, session, challenge, cancellable, error);
  if (challenge != NULL && g_ascii_strncasecmp (challenge, "Basic", 5) == 0) {
    g_autofree char *basic = dup_locked (self, &self->basic);
    if (basic == NULL) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                   "registry %s needs credentials for %s and none of the auth files "
                   "(containers auth.json, ~/.docker/config.json) has any for %s",
                   self->host, what, self->registry);
      return FALSE;
    }
    if (!self->allow_http && g_str_equal (self->scheme, "http"))
      return FALSE; /* unreachable: http is only ever chosen when allowed */
    g_mutex_lock (&self->lock);
    g_free (self->authorization);
    self->authorization = g_strdup_printf ("Basic %s", basic);
    g_mutex_unlock (&self->lock);
    return TRUE;
  }
  g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
               "registry %s refused %s (401) with no usable challenge", self->host, what);
  return FALSE;
}

/* Sends GET @path (below /v2/<repository>/) and returns the body stream of
 * a 2xx answer, following the auth challenge, redirects and retries. */
static GInputStream *
send_get (BangerOciRegistry *self, SoupSession *session, const char *path, const char *accept,
          guint64 range_from, const char *what, SoupMessage **msg_out, GCancellable *cancellable,
          GError **error)
{
  gboolean auth_tried = FALSE;
  guint attempt = 0;
  guint redirects = 0;
  g_autofree char *redirect_url = NULL;

  for (;;) {
    g_autofree char *scheme = dup_locked (self, &self->scheme);
    g_autofree char *authorization = dup_locked (self, &self->authorization);
    g_autofree char *url = redirect_url ? g_strdup (redirect_url)
                                        : g_strdup_printf ("%s://%s/v2/%s/%s", scheme, self->host,
                                                           self->repository, path);
    g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
    g_autoptr (GInputStream) in = NULL;
    g_autoptr (GError) local = NULL;
    SoupMessageHeaders *req;
    guint status;

    if (msg == NULL) {
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY, "cannot make a request for %s", url);
      return NULL;
    }
    soup_message_set_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
    if (self->insecure)
      g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
    req = soup_message_get_request_headers (msg);
    if (accept != NULL)
      soup_message_headers_replace (req, "Accept", accept);
    /* The registry's credentials never follow a redirect to storage. */
    if (authorization != NULL && redirect_url == NULL)
      soup_message_headers_replace (req, "Authorization", authorization);
    if (range_from > 0)
      soup_message_headers_set_range (req, range_from, -1);

    in = soup_session_send (session, msg, cancellable, &local);
    if (in == NULL) {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
        return NULL;
      }
      /* An HTTP-only registry answers the TLS hello with garbage: fall back
       * to plain HTTP where that is allowed. */
      if (redirect_url == NULL && g_str_equal (scheme, "https") && self->allow_http
          && (local->domain == G_TLS_ERROR || local->domain == G_IO_ERROR)) {
        g_debug ("%s: HTTPS failed (%s), using plain HTTP", self->host, local->message);
        g_mutex_lock (&self->lock);
        g_free (self->scheme);
        self->scheme = g_strdup ("http");
        g_mutex_unlock (&self->lock);
        continue;
      }
      if (local->domain != G_TLS_ERROR && ++attempt < MAX_ATTEMPTS) {
        g_debug ("%s: %s, retrying", url, local->message);
        if (!backoff_wait (500u << attempt, cancellable, error))
          return NULL;
        continue;
      }
      g_set_error (error, BANGER_ERROR, BANGER_ERROR_NETWORK,
                   "cannot fetch %s from registry %s: %s", what, self->host, local->message);
      return NULL;
    }
    status = soup_message_get_status (msg);
    if (status >= 200 && status < 300) {
      if (msg_out != NULL)
        *msg_out = g_object_ref (msg);
      return g_steal_pointer (&in);
    }
    if (status == 401 && redirect_url == NULL) {
      if (auth_tried) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                     "registry %s refused %s even after authenticating%s", self->host, what,
                     self->basic ? " with the credentials from the auth file" : "");
        return NULL;
      }
      auth_tried = TRUE;
      if (!handle_challenge (self, session, msg, what, cancellable, error))
        return NULL;
      continue;
    }
    if (status >= 300 && status < 400 && status != 304) {
      const char *location
          = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location");
      g_autoptr (GUri) target = NULL;
      if (location == NULL || ++redirects > MAX_REDIRECTS) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                     "registry %s: bad or too many redirects for %s", self->host, what);
        return NULL;
      }
      target = g_uri_parse_relative (soup_message_get_uri (msg), location, G_URI_FLAGS_NONE, NULL);
      if (target == NULL
          || (g_strcmp0 (g_uri_get_scheme (target), "https") != 0
              && !(g_strcmp0 (g_uri_get_scheme (target), "http") == 0
                   && (self->allow_http || host_is_loopback (g_uri_get_host (target)))))) {
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                     "registry %s redirected %s to %s, which is not HTTPS", self->host, what,
                     location);
        return NULL;
      }
      g_free (redirect_url);
      redirect_url = g_uri_to_string (target);
      continue;
    }
    if (is_retryable_status (status) && ++attempt < MAX_ATTEMPTS) {
      const char *retry_after
          = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After");
      guint ms = 500u << attempt;
      if (retry_after != NULL && g_ascii_isdigit (retry_after[0]))
        ms = MIN (g_ascii_strtoull (retry_after, NULL, 10), 10) * 1000;
      g_debug ("%s: %u, retrying in %u ms", url, status, ms);
      if (!backoff_wait (ms, cancellable, error))
        return NULL;
      continue;
    }
    {
      g_autofree char *detail = registry_error_text (in, cancellable);
      if (status == 404)
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND,
                     "registry %s has no %s in repository %s%s%s", self->host, what,
                     self->repository, detail ? ": " : "", detail ? detail : "");
      else if (status == 403)
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_NOT_AUTHORIZED,
                     "registry %s denied %s (403)%s%s", self->host, what, detail ? ": " : "",
                     detail ? detail : "");
      else
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_REGISTRY,
                     "registry %s answered %u %s for %s%s%s", self->host, status,
                     soup_message_get_reason_phrase (msg), what, detail ? ": " : "",
                     detail ? detail : "");
      return NULL;
    }
  }
}

GBytes *
banger_oci_registry_get_manifest (BangerOciRegistry *self, const char *reference,
                                  char **media_type_out, char **digest_out,
                                  GCancellable *cancellable, GError **error)
{
  SoupSession *session = session_get (self);
  g_autofree char *path = g_strdup_printf ("manifests/%s", reference);
  g_autofree char *what = g_strdup_printf ("manifest %s", reference);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autofree char *digest = NULL;
  const char *content_type;

  in = send_get (self, session, path, BANGER_OCI_MANIFEST_ACCEPT, 0, what, &msg, cancellable,
                 error);
  if (in != NULL)
    body = read_all (in, MAX_MANIFEST_BYTES, what, cancellable, error);
  g_clear_object (&in);
  session_put (self, session);
  if (body == NULL)
    return NULL;

  {
    g_autofree char *hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, body);
    digest = g_strconcat ("sha256:", hex, NULL);
  }
  if (g_str_has_prefix (reference, "sha256:") && !g_str_equal (reference, digest)) {
    g_set_error (error, BANGER_ERROR, BANGER_ERROR_VERIFICATION,
                 "manifest %s from registry %s does not match its digest (its content hashes to "
                 "%s)",
                 reference, self->host, digest);
    return NULL;
  }
  content_type
      = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  if (media_type_out != NULL)
    *media_type_out = g_strdup (content_type);
  if (digest_out != NULL)
    *digest_out = g_steal_pointer (&digest);
  return g_steal_pointer (&body);
}

gboolean
banger_oci_registry_fetch_blob (BangerOciRegistry *self, const char *digest, guint64 offset,
                                BangerOciSinkFunc sink, gpointer user_data,
                                GCancellable *cancellable, GError **error)
{
  SoupSession *session = session_get (self);
  g_autofree char *path = g_strdup_printf ("blobs/%s", digest);
  g_autofree char *what = g_strdup_printf ("blob %s", digest);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autofree guint8 *buf = NULL;
  gboolean ok = FALSE;

  in = send_get (self, session, path, NULL, offset, what, &msg, cancellable, error);
  if (in == NULL)
    goto out;
  if (offset > 0) {
    goffset start = 0, end = 0, total = 0;
    if (soup_message_get_status (msg) != 206
        || !soup_message_headers_get_content_range (soup_message_get_response_headers (msg), &start,
                                                    &end, &total)
        || (guint64)start != offset) {
      if (!sink (NULL, 0, user_data, error))
        goto out;
    }
  }
  buf = g_malloc (CHUNK);
  for (;;) {
    g_autoptr (GError) local = NULL;
    gssize n = g_input_stream_read (in, buf, CHUNK, cancellable, &local);
    if (n < 0) {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_CANCELLED, "pull cancelled");
      else
        g_set_error (error, BANGER_ERROR, BANGER_ERROR_NETWORK,
                     "reading blob %s from registry %s: %s", digest, self->host, local->message);
      goto out;
    }
    if (n == 0)
      break;
    if (!sink (buf, n, user_data, error))
      goto out;
  }
  ok = TRUE;
out:
  g_clear_object (&in);
  session_put (self, session);
  return ok;
}
