#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What a build fixes for `banger update` and no config file can change
 * (docs/update.md): the release public key (PEM; "" when the build was
 * configured without -Drelease_pubkey) and the manifest URL. They are
 * defined by the executable (update-key.c, generated from update-key.c.in),
 * not by the daemon library, so that the test-only bangerd-testkey can link
 * the same library with the test key. Only main.c reads them: it hands them
 * to the engine (banger_engine_set_release), which hands them on. */
extern const char banger_release_pubkey_pem[];
const char *banger_release_manifest_url (void);

G_END_DECLS
