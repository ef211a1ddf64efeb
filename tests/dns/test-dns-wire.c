#define G_LOG_DOMAIN "test-dns-wire"

/* The DNS wire format of bangerd's responder (src/service/net/dns-wire.c),
 * without sockets or a store: well-formed queries get the right answers,
 * each class of malformed packet the right rcode (or no reply), and a few
 * thousand seeded random and mutated packets neither crash it nor make it
 * read past the packet (every packet is its own exact-size allocation, so
 * the ASan run catches an over-read) nor write a reply that lies about
 * itself. */

#include <string.h>

#include "dns-wire.h"

/* The test's own VM table: "dev" → 10.77.0.42, "web-1" → 10.77.0.7,
 * "broken" → a store failure. */
static BangerDnsLookup
lookup (const char *name, guint8 addr[4], gpointer user_data)
{
  guint *calls = user_data;

  if (calls != NULL)
    (*calls)++;
  g_assert_cmpuint (strlen (name), >=, 1);
  g_assert_cmpuint (strlen (name), <=, 63);
  for (const char *p = name; *p; p++)
    g_assert_true (g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '-');
  if (g_str_equal (name, "dev")) {
    memcpy (addr, (guint8[]){ 10, 77, 0, 42 }, 4);
    return BANGER_DNS_LOOKUP_FOUND;
  }
  if (g_str_equal (name, "web-1")) {
    memcpy (addr, (guint8[]){ 10, 77, 0, 7 }, 4);
    return BANGER_DNS_LOOKUP_FOUND;
  }
  if (g_str_equal (name, "broken"))
    return BANGER_DNS_LOOKUP_FAILED;
  return BANGER_DNS_LOOKUP_NOT_FOUND;
}

/* ---- building queries ------------------------------------------------------------------- */

static void
put16 (GByteArray *b, guint16 v)
{
  guint8 x[2] = { v >> 8, v & 0xff };
  g_byte_array_append (b, x, 2);
}

static void
put_name (GByteArray *b, const char *dotted)
{
  g_auto (GStrv) labels = g_strsplit (dotted, ".", -1);

  for (guint i = 0; labels[i] != NULL; i++) {
    guint8 n = strlen (labels[i]);

    if (n == 0)
      continue;
    g_byte_array_append (b, &n, 1);
    g_byte_array_append (b, (const guint8 *)labels[i], n);
  }
  g_byte_array_append (b, (const guint8 *)"", 1);
}

static void
put_header (GByteArray *b, guint16 id, guint16 flags, guint16 qd, guint16 an, guint16 ns,
            guint16 ar)
{
  put16 (b, id);
  put16 (b, flags);
  put16 (b, qd);
  put16 (b, an);
  put16 (b, ns);
  put16 (b, ar);
}

static GByteArray *
query (const char *name, guint16 qtype, gboolean edns)
{
  GByteArray *b = g_byte_array_new ();

  put_header (b, 0xbeef, 0x0100 /* RD */, 1, 0, 0, edns ? 1 : 0);
  put_name (b, name);
  put16 (b, qtype);
  put16 (b, BANGER_DNS_CLASS_IN);
  if (edns) {
    g_byte_array_append (b, (const guint8 *)"", 1);
    put16 (b, BANGER_DNS_TYPE_OPT);
    put16 (b, 4096);
    put16 (b, 0);
    put16 (b, 0x8000); /* DO */
    put16 (b, 0);
  }
  return b;
}

/* ---- reading replies -------------------------------------------------------------------- */

typedef struct {
  gsize len;
  guint8 buf[BANGER_DNS_REPLY_MAX];
  int rcode; /* as banger_dns_answer() reported it */
} Reply;

static guint16
get16 (const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

/* Answers a copy of @len bytes at @msg held in an allocation of exactly
 * that size, and checks what holds for every reply. */
static Reply
answer (const guint8 *msg, gsize len)
{
  Reply r = { 0 };
  guint8 *copy = g_malloc (len > 0 ? len : 1);

  memcpy (copy, msg, len);
  r.len = banger_dns_answer (copy, len, lookup, NULL, r.buf, sizeof r.buf, &r.rcode);
  if (r.len == 0) {
    g_assert_cmpint (r.rcode, ==, -1);
  } else {
    g_assert_cmpuint (r.len, >=, 12);
    g_assert_cmpuint (r.len, <=, BANGER_DNS_REPLY_MAX);
    g_assert_cmpuint (get16 (r.buf), ==, get16 (copy));     /* id */
    g_assert_true (r.buf[2] & 0x80);                        /* QR */
    g_assert_cmpuint (r.buf[2] & 0x78, ==, copy[2] & 0x78); /* opcode */
    g_assert_cmpint (r.buf[3] & 0xf, ==, r.rcode & 0xf);
    g_assert_cmpuint (get16 (r.buf + 4), <=, 1);
  }
  g_free (copy);
  return r;
}

static Reply
answer_array (GByteArray *b)
{
  Reply r = answer (b->data, b->len);
  g_byte_array_unref (b);
  return r;
}

#define RCODE(r)   ((r).buf[3] & 0xf)
#define ANCOUNT(r) get16 ((r).buf + 6)
#define NSCOUNT(r) get16 ((r).buf + 8)
#define ARCOUNT(r) get16 ((r).buf + 10)
#define AA(r)      (((r).buf[2] & 0x04) != 0)

/* ---- cases ------------------------------------------------------------------------------ */

static void
test_answers (void)
{
  Reply r;
  static const guint8 want_addr[] = { 10, 77, 0, 42 };
  gsize qend;

  r = answer_array (query ("dev.vm", BANGER_DNS_TYPE_A, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_true (AA (r));
  g_assert_true (r.buf[2] & 0x01); /* RD copied */
  g_assert_cmpuint (ANCOUNT (r), ==, 1);
  g_assert_cmpuint (NSCOUNT (r), ==, 0);
  /* header, question (4+3+4 bytes), then the A record pointing at it */
  qend = 12 + 8 + 4;
  g_assert_cmpuint (r.len, ==, qend + 16);
  g_assert_cmpuint (get16 (r.buf + qend), ==, 0xc00c);
  g_assert_cmpuint (get16 (r.buf + qend + 2), ==, BANGER_DNS_TYPE_A);
  g_assert_cmpuint (get16 (r.buf + qend + 10), ==, 4);
  g_assert_cmpmem (r.buf + qend + 12, 4, want_addr, 4);

  /* Case-insensitive, and the question comes back spelled as asked. */
  r = answer_array (query ("DeV.vM.", BANGER_DNS_TYPE_A, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 1);
  g_assert_cmpmem (r.buf + 12, 8, "\3DeV\2vM\0", 8);
  r = answer_array (query ("WEB-1.VM", BANGER_DNS_TYPE_ANY, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 1);

  /* NODATA: the name exists, not with this type; SOA for negative caching. */
  r = answer_array (query ("dev.vm", BANGER_DNS_TYPE_AAAA, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 0);
  g_assert_cmpuint (NSCOUNT (r), ==, 1);
  g_assert_cmpuint (get16 (r.buf + 12 + 8 + 4 + 4), ==, BANGER_DNS_TYPE_SOA);

  /* NXDOMAIN with the SOA: unknown VMs, names below a VM, bad labels. */
  for (guint i = 0; i < 4; i++) {
    const char *names[] = { "nope.vm", "x.dev.vm", "d_v.vm", "-.vm" };
    r = answer_array (query (names[i], BANGER_DNS_TYPE_A, FALSE));
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NXDOMAIN);
    g_assert_true (AA (r));
    g_assert_cmpuint (ANCOUNT (r), ==, 0);
    g_assert_cmpuint (NSCOUNT (r), ==, 1);
  }

  /* Outside the zone (and the root, and class CHAOS): REFUSED, no AA. */
  for (guint i = 0; i < 4; i++) {
    const char *names[] = { "example.com", "vm.example", ".", "dev.vmx" };
    r = answer_array (query (names[i], BANGER_DNS_TYPE_A, FALSE));
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_REFUSED);
    g_assert_false (AA (r));
    g_assert_cmpuint (ANCOUNT (r) + NSCOUNT (r), ==, 0);
  }
  {
    GByteArray *b = query ("dev.vm", BANGER_DNS_TYPE_A, FALSE);
    b->data[b->len - 1] = 3; /* CH */
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_REFUSED);
  }

  /* The apex: SOA answered, other types NODATA. */
  r = answer_array (query ("vm", BANGER_DNS_TYPE_SOA, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 1);
  r = answer_array (query ("VM.", BANGER_DNS_TYPE_A, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 0);
  g_assert_cmpuint (NSCOUNT (r), ==, 1);

  /* A store failure is SERVFAIL, not a false "no such VM". */
  r = answer_array (query ("broken.vm", BANGER_DNS_TYPE_A, FALSE));
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_SERVFAIL);
}

static void
test_edns (void)
{
  Reply r = answer_array (query ("dev.vm", BANGER_DNS_TYPE_A, TRUE));
  const guint8 *opt;

  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
  g_assert_cmpuint (ANCOUNT (r), ==, 1);
  g_assert_cmpuint (ARCOUNT (r), ==, 1);
  opt = r.buf + r.len - 11;
  g_assert_cmpuint (opt[0], ==, 0);
  g_assert_cmpuint (get16 (opt + 1), ==, BANGER_DNS_TYPE_OPT);
  g_assert_cmpuint (get16 (opt + 3), ==, BANGER_DNS_EDNS_UDP_SIZE);
  g_assert_cmpuint (get16 (opt + 7), ==, 0); /* no DO: nothing is signed */

  /* An OPT with options (a cookie) is fine. */
  {
    GByteArray *b = query ("dev.vm", BANGER_DNS_TYPE_A, TRUE);
    b->data[b->len - 1] = 12; /* RDLEN */
    put16 (b, 10);            /* COOKIE */
    put16 (b, 8);
    g_byte_array_append (b, (const guint8 *)"12345678", 8);
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
    g_assert_cmpuint (ANCOUNT (r), ==, 1);
  }
  /* EDNS version 1: BADVERS (extended rcode 16: 0 in the header, 1 in the OPT). */
  {
    GByteArray *b = query ("dev.vm", BANGER_DNS_TYPE_A, TRUE);
    b->data[b->len - 5] = 1; /* the version byte of the OPT's TTL */
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_BADVERS);
    g_assert_cmpuint (RCODE (r), ==, 0);
    g_assert_cmpuint (ANCOUNT (r), ==, 0);
    g_assert_cmpuint (r.buf[r.len - 11 + 5], ==, 1);
  }
  /* Two OPTs, an OPT not owned by the root, options that overrun: FORMERR. */
  {
    GByteArray *b = g_byte_array_new ();
    put_header (b, 1, 0, 1, 0, 0, 2);
    put_name (b, "dev.vm");
    put16 (b, 1);
    put16 (b, 1);
    for (guint i = 0; i < 2; i++) {
      g_byte_array_append (b, (const guint8 *)"", 1);
      put16 (b, BANGER_DNS_TYPE_OPT);
      put16 (b, 1232);
      put16 (b, 0);
      put16 (b, 0);
      put16 (b, 0);
    }
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_FORMERR);
  }
  {
    GByteArray *b = g_byte_array_new ();
    put_header (b, 1, 0, 1, 0, 0, 1);
    put_name (b, "dev.vm");
    put16 (b, 1);
    put16 (b, 1);
    put_name (b, "vm");
    put16 (b, BANGER_DNS_TYPE_OPT);
    put16 (b, 1232);
    put16 (b, 0);
    put16 (b, 0);
    put16 (b, 0);
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_FORMERR);
  }
  {
    GByteArray *b = query ("dev.vm", BANGER_DNS_TYPE_A, TRUE);
    b->data[b->len - 1] = 4; /* RDLEN 4: one option header... */
    put16 (b, 10);
    put16 (b, 8); /* ...claiming 8 bytes that are not there */
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_FORMERR);
  }
  /* An additional record that is not an OPT (a TSIG, say) is skipped. */
  {
    GByteArray *b = g_byte_array_new ();
    put_header (b, 1, 0, 1, 0, 0, 1);
    put_name (b, "dev.vm");
    put16 (b, 1);
    put16 (b, 1);
    put_name (b, "key.example");
    put16 (b, 250);
    put16 (b, 255);
    put16 (b, 0);
    put16 (b, 0);
    put16 (b, 2);
    put16 (b, 0xabcd);
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOERROR);
    g_assert_cmpuint (ARCOUNT (r), ==, 0);
  }
}

static void
test_dropped (void)
{
  GByteArray *b = query ("dev.vm", BANGER_DNS_TYPE_A, FALSE);
  Reply r;

  /* Shorter than a header: nothing to answer with. */
  for (gsize len = 0; len < 12; len++) {
    r = answer (b->data, len);
    g_assert_cmpuint (r.len, ==, 0);
  }
  /* A response (QR set): never answered, or two servers could ping-pong. */
  b->data[2] |= 0x80;
  r = answer (b->data, b->len);
  g_assert_cmpuint (r.len, ==, 0);
  g_byte_array_unref (b);

  /* A reply buffer that is too small is refused, not overrun. */
  {
    guint8 small[16];
    GByteArray *q = query ("dev.vm", BANGER_DNS_TYPE_A, FALSE);
    g_assert_cmpuint (banger_dns_answer (q->data, q->len, lookup, NULL, small, sizeof small, NULL),
                      ==, 0);
    g_byte_array_unref (q);
  }
}

static void
assert_formerr (GByteArray *b, const char *what)
{
  guint calls = 0;
  Reply r = { 0 };

  r.len = banger_dns_answer (b->data, b->len, lookup, &calls, r.buf, sizeof r.buf, &r.rcode);
  if (r.rcode != BANGER_DNS_RCODE_FORMERR)
    g_error ("%s: rcode %d, not FORMERR", what, r.rcode);
  g_assert_cmpuint (r.len, ==, 12); /* the header alone: nothing else is trusted */
  g_assert_cmpuint (RCODE (r), ==, BANGER_DNS_RCODE_FORMERR);
  g_assert_cmpuint (get16 (r.buf + 4), ==, 0);
  g_assert_cmpuint (calls, ==, 0);
  /* and the same through the exact-size copy */
  r = answer (b->data, b->len);
  g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_FORMERR);
  g_byte_array_unref (b);
}

static void
test_formerr (void)
{
  GByteArray *b;
  char long_label[65];

  /* QDCOUNT 0 and 2; an answer or authority record in a query. */
  for (guint16 qd = 0; qd <= 2; qd += 2) {
    b = g_byte_array_new ();
    put_header (b, 7, 0, qd, 0, 0, 0);
    put_name (b, "dev.vm");
    put16 (b, 1);
    put16 (b, 1);
    assert_formerr (b, qd == 0 ? "QDCOUNT 0" : "QDCOUNT 2");
  }
  b = query ("dev.vm", 1, FALSE);
  b->data[7] = 1;
  assert_formerr (b, "ANCOUNT 1");
  b = query ("dev.vm", 1, FALSE);
  b->data[9] = 1;
  assert_formerr (b, "NSCOUNT 1");

  /* The question cut short, at every byte. */
  {
    GByteArray *whole = query ("dev.vm", 1, FALSE);
    for (gsize len = 12; len < whole->len; len++) {
      b = g_byte_array_new ();
      g_byte_array_append (b, whole->data, len);
      assert_formerr (b, "truncated question");
    }
    g_byte_array_unref (whole);
  }

  /* A label of 64 (and the 0x40/0x80 label types). */
  memset (long_label, 'a', 64);
  long_label[64] = '\0';
  {
    g_autofree char *name = g_strconcat (long_label, ".vm", NULL);
    b = query (name, 1, FALSE);
    assert_formerr (b, "label of 64");
  }
  b = query ("dev.vm", 1, FALSE);
  b->data[12] = 0x83;
  assert_formerr (b, "label type 10");

  /* A name over 255 bytes: 4 × 63-byte labels plus "vm" = 261. */
  {
    char l63[64];
    g_autofree char *name = NULL;

    memset (l63, 'a', 63);
    l63[63] = '\0';
    name = g_strjoin (".", l63, l63, l63, l63, "vm", NULL);
    b = query (name, 1, FALSE);
    assert_formerr (b, "name of 261 bytes");
    /* 253 characters (255 bytes on the wire) is the longest allowed:
     * NXDOMAIN. */
    {
      char l58[59];

      memset (l58, 'b', 58);
      l58[58] = '\0';
      g_free (name);
      name = g_strjoin (".", l63, l63, l63, l58, "vm", NULL);
      g_assert_cmpuint (strlen (name), ==, 253);
      b = query (name, 1, FALSE);
      g_assert_cmpint (answer_array (b).rcode, ==, BANGER_DNS_RCODE_NXDOMAIN);
    }
  }

  /* Compression pointers: to itself, forwards, a loop through the header,
   * and one cut in half. */
  {
    static const guint8 self_ptr[] = { 0xc0, 12, 0, 1, 0, 1 };
    static const guint8 fwd_ptr[] = { 0xc0, 14, 3, 'd', 'e', 'v', 2, 'v', 'm', 0, 0, 1, 0, 1 };
    static const guint8 half_ptr[] = { 0xc0 };
    const struct {
      const guint8 *body;
      gsize len;
      const char *what;
    } cases[] = {
      { self_ptr, sizeof self_ptr, "pointer to itself" },
      { fwd_ptr, sizeof fwd_ptr, "pointer forwards" },
      { half_ptr, sizeof half_ptr, "half a pointer" },
    };
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
      b = g_byte_array_new ();
      put_header (b, 9, 0, 1, 0, 0, 0);
      g_byte_array_append (b, cases[i].body, cases[i].len);
      assert_formerr (b, cases[i].what);
    }
    /* Pointers into the header: the question points at byte 0, whose
     * id 0xc002 points forwards to byte 2; an id of 0xc000 points at
     * itself. */
    for (guint16 id = 0xc000; id <= 0xc002; id += 2) {
      static const guint8 into_header[] = { 0xc0, 0x00, 0, 1, 0, 1 };

      b = g_byte_array_new ();
      put_header (b, id, 0x0000, 1, 0, 0, 0);
      g_byte_array_append (b, into_header, sizeof into_header);
      assert_formerr (b, "a pointer loop in the header");
    }
  }
}

static void
test_notimp (void)
{
  /* STATUS (2), NOTIFY (4), UPDATE (5): answered NOTIMP, header only. */
  for (guint opcode = 1; opcode < 16; opcode++) {
    GByteArray *b = query ("dev.vm", 1, FALSE);
    Reply r;

    b->data[2] = (guint8)(opcode << 3);
    r = answer_array (b);
    g_assert_cmpint (r.rcode, ==, BANGER_DNS_RCODE_NOTIMP);
    g_assert_cmpuint (r.len, ==, 12);
    g_assert_cmpuint ((r.buf[2] >> 3) & 0xf, ==, opcode);
  }
}

static void
test_random (void)
{
  GRand *rand = g_rand_new_with_seed (0x42069);
  guint counts[32] = { 0 };
  GByteArray *seeds[] = {
    query ("dev.vm", BANGER_DNS_TYPE_A, FALSE),
    query ("web-1.vm", BANGER_DNS_TYPE_AAAA, TRUE),
    query ("nope.vm", BANGER_DNS_TYPE_A, TRUE),
    query ("example.com", BANGER_DNS_TYPE_A, FALSE),
  };

  /* Pure noise, with a header that passes the QR test half the time. */
  for (guint i = 0; i < 3000; i++) {
    gsize len = g_rand_int_range (rand, 0, 600);
    g_autofree guint8 *pkt = g_malloc (len + 1);
    Reply r;

    for (gsize j = 0; j < len; j++)
      pkt[j] = (guint8)g_rand_int (rand);
    if (len > 2 && g_rand_boolean (rand))
      pkt[2] &= 0x07; /* QR clear, opcode QUERY */
    if (len > 5 && g_rand_boolean (rand)) {
      pkt[4] = 0;
      pkt[5] = 1; /* one question */
    }
    r = answer (pkt, len);
    counts[r.rcode < 0 ? 31 : r.rcode]++;
  }
  /* Valid queries with a few bytes flipped, cut or grown. */
  for (guint i = 0; i < 3000; i++) {
    GByteArray *seed = seeds[g_rand_int_range (rand, 0, G_N_ELEMENTS (seeds))];
    gsize len = seed->len;
    g_autofree guint8 *pkt = NULL;
    Reply r;

    if (g_rand_int_range (rand, 0, 4) == 0)
      len = g_rand_int_range (rand, 0, seed->len + 8);
    pkt = g_malloc0 (len + 1);
    memcpy (pkt, seed->data, MIN (len, seed->len));
    for (guint flips = g_rand_int_range (rand, 1, 4); flips > 0 && len > 0; flips--)
      pkt[g_rand_int_range (rand, 0, len)] ^= (guint8)g_rand_int_range (rand, 1, 256);
    r = answer (pkt, len);
    counts[r.rcode < 0 ? 31 : r.rcode]++;
  }
  g_test_message ("random packets: dropped %u, NOERROR %u, FORMERR %u, NXDOMAIN %u, NOTIMP %u, "
                  "REFUSED %u, SERVFAIL %u, BADVERS %u",
                  counts[31], counts[0], counts[1], counts[3], counts[4], counts[5], counts[2],
                  counts[16]);
  /* The mutations reach every branch, not only the first checks. */
  g_assert_cmpuint (counts[31], >, 0);
  g_assert_cmpuint (counts[BANGER_DNS_RCODE_FORMERR], >, 0);
  g_assert_cmpuint (counts[BANGER_DNS_RCODE_NOERROR], >, 0);
  g_assert_cmpuint (counts[BANGER_DNS_RCODE_NXDOMAIN], >, 0);
  g_assert_cmpuint (counts[BANGER_DNS_RCODE_REFUSED], >, 0);
  g_assert_cmpuint (counts[BANGER_DNS_RCODE_NOTIMP], >, 0);
  for (guint i = 0; i < G_N_ELEMENTS (seeds); i++)
    g_byte_array_unref (seeds[i]);
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dns/wire/answers", test_answers);
  g_test_add_func ("/dns/wire/edns", test_edns);
  g_test_add_func ("/dns/wire/dropped", test_dropped);
  g_test_add_func ("/dns/wire/formerr", test_formerr);
  g_test_add_func ("/dns/wire/notimp", test_notimp);
  g_test_add_func ("/dns/wire/random", test_random);
  return g_test_run ();
}
