#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* A small synchronous client for QEMU's QMP socket. Calls block for at most
 * the timeout given at connect time, so bangerd runs them in worker threads
 * (GTask), never on its main loop. */
typedef struct _BangerQmp BangerQmp;

/* Connects to the QMP unix socket at @path, reads the greeting and enters
 * command mode (qmp_capabilities). */
BangerQmp *banger_qmp_connect (const char *path, guint timeout_ms, GError **error);
void banger_qmp_free (BangerQmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerQmp, banger_qmp_free)

/* Runs @command with optional @arguments (a JSON object or NULL) and returns
 * the "return" member (a new reference), skipping asynchronous events. A
 * QMP "error" reply becomes a BANGER_ERROR_FAILED naming its class and desc. */
JsonNode *banger_qmp_execute (BangerQmp *qmp, const char *command, JsonObject *arguments,
                              GError **error);

/* Hands @fd to QEMU under @name (QMP getfd, the descriptor passed with the
 * command as SCM_RIGHTS), for a later "fd:@name" migration URI. @fd stays
 * the caller's. */
gboolean banger_qmp_getfd (BangerQmp *qmp, const char *name, int fd, GError **error);

/* "running", "paused", "shutdown", … from query-status. */
char *banger_qmp_query_status (BangerQmp *qmp, GError **error);

G_END_DECLS
