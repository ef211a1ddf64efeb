#pragma once

#include "soup-api.h"

G_BEGIN_DECLS

/* The one setup of an HTTP session for every download bangerd makes (OCI
 * registries, the catalog index, releases): the same user agent, 60 s for a
 * connection that stops answering, idle connections closed after 30 s (a
 * registry's pooled sessions keep theirs that long). */
SoupSession *banger_http_session_new (void);

G_END_DECLS
