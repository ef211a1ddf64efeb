#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* A client for Firecracker's HTTP API on its unix socket (libsoup-3, sync
 * calls: the VMM drivers run in worker threads). The contract is upstream's
 * firecracker-v1.16.1.yaml. Every failure is a BANGER_ERROR naming the
 * request; when Firecracker refused a request its "fault_message" is in the
 * error's message. */
typedef struct _BangerFirecrackerApi BangerFirecrackerApi;

BangerFirecrackerApi *banger_firecracker_api_new (const char *socket_path, guint timeout_s);
void banger_firecracker_api_free (BangerFirecrackerApi *api);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BangerFirecrackerApi, banger_firecracker_api_free)

/* PUT @path with @body (a JSON object; may be NULL). Success is any 2xx. */
gboolean banger_firecracker_api_put (BangerFirecrackerApi *api, const char *path, JsonNode *body,
                                     GError **error);

/* PATCH @path with @body (PATCH /vm {"state": "Paused"}). Success is any 2xx. */
gboolean banger_firecracker_api_patch (BangerFirecrackerApi *api, const char *path, JsonNode *body,
                                       GError **error);

/* GET @path: the JSON object Firecracker answered. */
JsonNode *banger_firecracker_api_get (BangerFirecrackerApi *api, const char *path, GError **error);

/* PUT /actions {"action_type": @action} (InstanceStart, SendCtrlAltDel,
 * FlushMetrics). */
gboolean banger_firecracker_api_action (BangerFirecrackerApi *api, const char *action,
                                        GError **error);

/* GET / → "state" ("Not started", "Running", "Paused"). */
char *banger_firecracker_api_get_state (BangerFirecrackerApi *api, GError **error);

G_END_DECLS
