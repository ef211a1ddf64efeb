#define G_LOG_DOMAIN "test-dns-cache"

/* bangerd's responder answering from its cache (src/service/net/dns-cache.c)
 * while the store changes under it: a real SQLite store in a temporary
 * directory, the real responder on a free loopback port, questions asked
 * over UDP right after each store call returns, without waiting: the
 * cache must already agree. The main loop of this process is never run
 * (and in /dns/cache/main-loop-busy the questions are asked from inside a
 * main-loop callback that does not return until they are answered): UDP
 * answers come from the responder's own thread. */

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "banger-config.h"
#include "banger-error.h"
#include "dns-responder.h"
#include "dns-wire.h"
#include "store-private.h"
#include "store.h"

/* Generous: the CI runs this under ASan on a loaded 2-core machine. */
#define ANSWER_TIMEOUT_S 30

typedef struct {
  char *dir;
  BangerStore *store;
  BangerDnsResponder *dns;
  guint port;
  int udp; /* the test's client socket */
} Fixture;

/* A port that is free for UDP and TCP on 127.0.0.1 right now. */
static guint
free_port (void)
{
  for (int attempt = 0; attempt < 50; attempt++) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int t = socket (AF_INET, SOCK_STREAM, 0);
    int u = socket (AF_INET, SOCK_DGRAM, 0);
    gboolean ok;

    g_assert_cmpint (t, >=, 0);
    g_assert_cmpint (u, >=, 0);
    g_assert_cmpint (bind (t, (struct sockaddr *)&a, sizeof a), ==, 0);
    g_assert_cmpint (getsockname (t, (struct sockaddr *)&a, &len), ==, 0);
    ok = bind (u, (struct sockaddr *)&a, sizeof a) == 0;
    close (t);
    close (u);
    if (ok)
      return ntohs (a.sin_port);
  }
  g_error ("no free port");
}

static void
start_responder (Fixture *fx)
{
  /* Someone may take the port between free_port() and the bind: another. */
  for (int attempt = 0; attempt < 20; attempt++) {
    g_autofree char *config_path = g_build_filename (fx->dir, "config", NULL);
    g_autofree char *text = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (BangerConfig) config = NULL;

    fx->port = free_port ();
    text = g_strdup_printf ("[dns]\nport=%u\n", fx->port);
    g_file_set_contents (config_path, text, -1, &error);
    g_assert_no_error (error);
    config = banger_config_load (config_path, fx->dir);
    fx->dns = banger_dns_responder_new (config, fx->store);
    banger_dns_responder_listen (fx->dns);
    if (banger_dns_responder_is_running (fx->dns))
      return;
    g_clear_pointer (&fx->dns, banger_dns_responder_free);
  }
  g_error ("the responder found no free port");
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *db = NULL;
  struct timeval tv = { ANSWER_TIMEOUT_S, 0 };

  fx->dir = g_dir_make_tmp ("banger-dns-cache-XXXXXX", &error);
  g_assert_no_error (error);
  db = g_build_filename (fx->dir, "banger.db", NULL);
  fx->store = banger_store_open (db, &error);
  g_assert_no_error (error);
  fx->udp = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (fx->udp, >=, 0);
  g_assert_cmpint (setsockopt (fx->udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), ==, 0);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  close (fx->udp);
  g_clear_pointer (&fx->dns, banger_dns_responder_free);
  g_clear_pointer (&fx->store, banger_store_free);
  dir = g_dir_open (fx->dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *p = g_build_filename (fx->dir, name, NULL);
    g_unlink (p);
  }
  g_rmdir (fx->dir);
  g_free (fx->dir);
}

/* ---- asking ------------------------------------------------------------------------------- */

typedef struct {
  int rcode;
  guint ancount;
  char addr[INET_ADDRSTRLEN]; /* the A record's address, "" without one */
} Answer;

/* Asks @name @qtype over UDP with a fresh ID and checks the reply echoes
 * the ID and the question as sent. */
static Answer
ask (Fixture *fx, const char *name, guint16 qtype)
{
  static guint16 next_id = 0x1000;
  g_autoptr (GByteArray) q = g_byte_array_new ();
  g_auto (GStrv) labels = g_strsplit (name, ".", -1);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (fx->port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  guint16 id = next_id++;
  guint8 header[12] = { id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
  guint8 tail[5] = { 0, qtype >> 8, qtype & 0xff, 0, 1 };
  guint8 reply[BANGER_DNS_REPLY_MAX];
  Answer a = { -1, 0, "" };
  ssize_t n;

  g_byte_array_append (q, header, sizeof header);
  for (guint i = 0; labels[i] != NULL; i++) {
    guint8 len = strlen (labels[i]);

    g_byte_array_append (q, &len, 1);
    g_byte_array_append (q, (const guint8 *)labels[i], len);
  }
  g_byte_array_append (q, tail, sizeof tail);
  g_assert_cmpint (sendto (fx->udp, q->data, q->len, 0, (struct sockaddr *)&to, sizeof to), ==,
                   q->len);
  /* Replies to earlier questions cannot arrive late: each was read. */
  n = recv (fx->udp, reply, sizeof reply, 0);
  if (n < 0)
    g_error ("no answer to %s within %d s: %s", name, ANSWER_TIMEOUT_S, g_strerror (errno));
  g_assert_cmpint (n, >=, (gssize)q->len);
  g_assert_cmpint (reply[0] << 8 | reply[1], ==, id);
  g_assert_cmpmem (reply + 12, q->len - 12, q->data + 12, q->len - 12);
  a.rcode = reply[3] & 0xf;
  a.ancount = reply[6] << 8 | reply[7];
  if (a.ancount == 1 && qtype == BANGER_DNS_TYPE_A) {
    /* The A record follows the question: pointer, type, class, TTL,
     * length, then the 4 bytes. */
    g_assert_cmpint (n, >=, (gssize)q->len + 16);
    g_assert_cmpint (reply[q->len + 10] << 8 | reply[q->len + 11], ==, 4);
    inet_ntop (AF_INET, reply + q->len + 12, a.addr, sizeof a.addr);
  }
  return a;
}

static void
assert_address (Fixture *fx, const char *name, const char *addr)
{
  Answer a = ask (fx, name, BANGER_DNS_TYPE_A);

  g_assert_cmpint (a.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (a.ancount, ==, 1);
  g_assert_cmpstr (a.addr, ==, addr);
}

static void
assert_nxdomain (Fixture *fx, const char *name)
{
  Answer a = ask (fx, name, BANGER_DNS_TYPE_A);

  g_assert_cmpint (a.rcode, ==, BANGER_DNS_RCODE_NXDOMAIN);
  g_assert_cmpuint (a.ancount, ==, 0);
}

/* ---- the store ---------------------------------------------------------------------------- */

static BangerVmRecord *
make_vm (const char *id, const char *name)
{
  BangerVmRecord *rec = banger_vm_record_new ();

  g_free (rec->id);
  rec->id = g_strdup (id);
  g_free (rec->name);
  rec->name = g_strdup (name);
  g_free (rec->state);
  rec->state = g_strdup ("created");
  g_free (rec->driver);
  rec->driver = g_strdup ("qemu");
  return rec;
}

static void
insert (Fixture *fx, BangerVmRecord *rec)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (banger_store_vm_insert (fx->store, rec, &error));
  g_assert_no_error (error);
}

static void
claim (Fixture *fx, const char *id, const char *ipv4)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (banger_store_lease_claim (fx->store, id, ipv4, &error));
  g_assert_no_error (error);
}

static void
release (Fixture *fx, const char *id)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (banger_store_lease_release (fx->store, id, &error));
  g_assert_no_error (error);
}

/* ---- cases -------------------------------------------------------------------------------- */

/* Every change of a name or lease shows in the very next answer: started
 * (claimed) → answers in any case, NODATA for AAAA; stopped (released),
 * renamed, deleted → NXDOMAIN at once. */
static void
test_follows_store (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BangerVmRecord) web = make_vm ("00000000000000a1", "web");
  g_autoptr (BangerVmRecord) db = make_vm ("00000000000000b2", "db");
  Answer a;

  start_responder (fx);
  assert_nxdomain (fx, "web.vm");

  /* Created: no lease, no name. */
  insert (fx, web);
  assert_nxdomain (fx, "web.vm");

  /* Started: the lease is claimed. */
  claim (fx, web->id, "10.77.0.5");
  assert_address (fx, "web.vm", "10.77.0.5");
  assert_address (fx, "WEB.Vm", "10.77.0.5");
  a = ask (fx, "web.vm", BANGER_DNS_TYPE_AAAA);
  g_assert_cmpint (a.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (a.ancount, ==, 0);

  /* A second VM, inserted with its lease in one step. */
  g_free (db->ipv4);
  db->ipv4 = g_strdup ("10.77.0.6");
  insert (fx, db);
  assert_address (fx, "db.vm", "10.77.0.6");

  /* A record update that keeps the name (a state change) changes nothing. */
  g_free (web->state);
  web->state = g_strdup ("running");
  g_assert_true (banger_store_vm_update (fx->store, web, &error));
  g_assert_no_error (error);
  assert_address (fx, "web.vm", "10.77.0.5");

  /* Renamed while leased: the old name goes, the new one answers. */
  g_free (web->name);
  web->name = g_strdup ("front");
  g_assert_true (banger_store_vm_update (fx->store, web, &error));
  g_assert_no_error (error);
  assert_nxdomain (fx, "web.vm");
  assert_address (fx, "front.vm", "10.77.0.5");

  /* Stopped: the lease is released. */
  release (fx, web->id);
  assert_nxdomain (fx, "front.vm");
  assert_address (fx, "db.vm", "10.77.0.6");

  /* Renamed while stopped, then started again: the new name, once leased. */
  g_free (web->name);
  web->name = g_strdup ("web");
  g_assert_true (banger_store_vm_update (fx->store, web, &error));
  g_assert_no_error (error);
  assert_nxdomain (fx, "web.vm");
  claim (fx, web->id, "10.77.0.7");
  assert_address (fx, "web.vm", "10.77.0.7");

  /* Deleted while leased: the lease goes with the record. */
  g_assert_true (banger_store_vm_delete (fx->store, web->id, &error));
  g_assert_no_error (error);
  assert_nxdomain (fx, "web.vm");
  g_assert_true (banger_store_vm_delete (fx->store, db->id, &error));
  g_assert_no_error (error);
  assert_nxdomain (fx, "db.vm");

  /* A claim the store refuses (the VM is gone) leaves nothing behind. */
  g_assert_false (banger_store_lease_claim (fx->store, web->id, "10.77.0.8", &error));
  g_assert_error (error, BANGER_ERROR, BANGER_ERROR_NOT_FOUND);
  assert_nxdomain (fx, "web.vm");
}

/* VMs the store holds before the responder exists (bangerd restarted with
 * VMs running) answer from its first query on. */
static void
test_loaded_at_start (Fixture *fx, gconstpointer data)
{
  g_autoptr (BangerVmRecord) up = make_vm ("00000000000000c3", "up");
  g_autoptr (BangerVmRecord) down = make_vm ("00000000000000d4", "down");

  g_free (up->ipv4);
  up->ipv4 = g_strdup ("10.77.0.9");
  insert (fx, up);
  insert (fx, down);
  start_responder (fx);
  assert_address (fx, "up.vm", "10.77.0.9");
  assert_nxdomain (fx, "down.vm");
  claim (fx, down->id, "10.77.0.10");
  assert_address (fx, "down.vm", "10.77.0.10");
}

/* The VMs cannot be read when the responder starts (here: their table is
 * renamed away under the store): every .vm name answers SERVFAIL, never a
 * false NXDOMAIN, with a warning; the next change the store tells loads
 * the whole table again. */
static void
test_unreadable_store (Fixture *fx, gconstpointer data)
{
  g_autoptr (BangerVmRecord) web = make_vm ("00000000000000f6", "web");
  g_autoptr (BangerVmRecord) db = make_vm ("00000000000000f7", "db");
  sqlite3 *sql = banger_store_get_db (fx->store);

  g_free (web->ipv4);
  web->ipv4 = g_strdup ("10.77.0.12");
  insert (fx, web);
  g_assert_cmpint (sqlite3_exec (sql, "ALTER TABLE vms RENAME TO vms_away", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  g_test_expect_message ("bangerd-net", G_LOG_LEVEL_WARNING, "DNS: cannot read the VMs*");
  start_responder (fx);
  g_test_assert_expected_messages ();
  g_assert_cmpint (ask (fx, "web.vm", BANGER_DNS_TYPE_A).rcode, ==, BANGER_DNS_RCODE_SERVFAIL);
  g_assert_cmpint (ask (fx, "nosuch.vm", BANGER_DNS_TYPE_A).rcode, ==, BANGER_DNS_RCODE_SERVFAIL);

  /* Readable again, but nothing told the cache yet: still SERVFAIL. */
  g_assert_cmpint (sqlite3_exec (sql, "ALTER TABLE vms_away RENAME TO vms", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (ask (fx, "web.vm", BANGER_DNS_TYPE_A).rcode, ==, BANGER_DNS_RCODE_SERVFAIL);

  /* The next change reloads everything, not just the VM it is about. */
  insert (fx, db);
  assert_address (fx, "web.vm", "10.77.0.12");
  assert_nxdomain (fx, "db.vm");
  claim (fx, db->id, "10.77.0.13");
  assert_address (fx, "db.vm", "10.77.0.13");
}

/* The main loop is busy (this callback runs on it and does not return
 * until it is done): UDP questions are still answered, store changes
 * included. */
typedef struct {
  Fixture *fx;
  gboolean done;
} Busy;

static gboolean
busy_cb (gpointer user_data)
{
  Busy *busy = user_data;
  Fixture *fx = busy->fx;
  g_autoptr (BangerVmRecord) vm = make_vm ("00000000000000e5", "busy");

  g_assert_true (g_main_context_is_owner (g_main_context_default ()));
  insert (fx, vm);
  assert_nxdomain (fx, "busy.vm");
  claim (fx, vm->id, "10.77.0.11");
  for (int i = 0; i < 100; i++)
    assert_address (fx, "busy.vm", "10.77.0.11");
  release (fx, vm->id);
  assert_nxdomain (fx, "busy.vm");
  busy->done = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_main_loop_busy (Fixture *fx, gconstpointer data)
{
  Busy busy = { fx, FALSE };

  start_responder (fx);
  g_idle_add (busy_cb, &busy);
  while (!busy.done)
    g_main_context_iteration (NULL, TRUE);
}

/* Stopping the responder while a client floods it: the UDP thread ends
 * and is joined (no hang, no use after free under ASan), and the port is
 * let go so a new responder can take it. (No question is asked during the
 * flood: a full receive buffer may rightly drop it.) */
#define FLOOD_BEFORE_STOP 2000

typedef struct {
  guint port;
  gint stop;
  GMutex lock;
  GCond cond;
  guint sent;
} Flood;

static gpointer
flood_thread (gpointer user_data)
{
  Flood *f = user_data;
  int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (f->port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  static const guint8 q[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                              3, 'a', 'b', 'c', 2, 'v', 'm', 0, 0, 1, 0, 1 };

  g_assert_cmpint (s, >=, 0);
  while (!g_atomic_int_get (&f->stop)) {
    (void)sendto (s, q, sizeof q, 0, (struct sockaddr *)&to, sizeof to);
    g_mutex_lock (&f->lock);
    if (++f->sent == FLOOD_BEFORE_STOP)
      g_cond_signal (&f->cond);
    g_mutex_unlock (&f->lock);
  }
  close (s);
  return NULL;
}

static void
test_stop_under_load (Fixture *fx, gconstpointer data)
{
  Flood flood = { 0 };
  GThread *thread;
  gint64 deadline = g_get_monotonic_time () + ANSWER_TIMEOUT_S * G_TIME_SPAN_SECOND;

  start_responder (fx);
  assert_nxdomain (fx, "abc.vm");
  flood.port = fx->port;
  g_mutex_init (&flood.lock);
  g_cond_init (&flood.cond);
  thread = g_thread_new ("flood", flood_thread, &flood);
  g_mutex_lock (&flood.lock);
  while (flood.sent < FLOOD_BEFORE_STOP)
    if (!g_cond_wait_until (&flood.cond, &flood.lock, deadline))
      g_error ("the flood sent only %u datagrams in %d s", flood.sent, ANSWER_TIMEOUT_S);
  g_mutex_unlock (&flood.lock);
  g_clear_pointer (&fx->dns, banger_dns_responder_free);
  g_atomic_int_set (&flood.stop, 1);
  g_thread_join (thread);
  g_mutex_clear (&flood.lock);
  g_cond_clear (&flood.cond);
  start_responder (fx);
  assert_nxdomain (fx, "abc.vm");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/dns/cache/follows-store", test_follows_store);
  ADD ("/dns/cache/loaded-at-start", test_loaded_at_start);
  ADD ("/dns/cache/unreadable-store", test_unreadable_store);
  ADD ("/dns/cache/main-loop-busy", test_main_loop_busy);
  ADD ("/dns/cache/stop-under-load", test_stop_under_load);
#undef ADD
  return g_test_run ();
}
