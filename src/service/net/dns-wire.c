/* DNS messages are parsed and written by hand here, for one zone with one
 * record type. What Debian 12 offers was checked first:
 *   - c-ares 1.18 (libc-ares-dev), libunbound, getdns, adns: resolvers —
 *     they build queries and parse responses, not the other way round;
 *   - ldns (libldns-dev): parses and writes any packet, but as a general
 *     toolkit (an allocated RR list per packet, OpenSSL underneath) whose
 *     users are tools like drill, not a server's hot path;
 *   - libknot (libknot-dev, Knot DNS's packet library) does exactly this,
 *     but its API follows Knot's releases (the soname changes with them)
 *     and drags libdnssec and libzscanner along;
 *   - dnsmasq, knot, nsd, unbound are programs, not libraries.
 * Answering A for "<name>.vm" takes a few hundred lines, every read
 * bounds-checked against the packet and every write against the reply
 * buffer; tests/dns/test-dns-wire.c feeds them malformed and random
 * packets. */

#include "dns-wire.h"

#include <string.h>

#define HEADER_LEN 12

/* Header flag bits (RFC 1035 4.1.1). */
#define FLAG_QR 0x8000
#define FLAG_AA 0x0400
#define FLAG_RD 0x0100

/* The zone's SOA: MNAME "vm.", RNAME "banger.vm.", serial 1, refresh,
 * retry, expire, and a minimum (negative-caching TTL) of BANGER_DNS_TTL. */
static const guint8 zone_name[] = { 2, 'v', 'm', 0 };
static const guint8 soa_rname[] = { 6, 'b', 'a', 'n', 'g', 'e', 'r', 2, 'v', 'm', 0 };

static guint16
get_u16 (const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

/* Reads the (possibly compressed) name at *offset into @out in
 * uncompressed wire form; on success *offset is just past the name as it
 * sits in the packet. Compression pointers must point strictly before the
 * run of labels they were found in: every jump goes backwards, so loops
 * are impossible and the walk ends within @len steps. */
static gboolean
read_name (const guint8 *msg, gsize len, gsize *offset, guint8 out[255], gsize *out_len,
           guint *nlabels)
{
  gsize pos = *offset;
  gsize run_start = pos;
  gsize end = 0;
  gboolean jumped = FALSE;
  gsize n = 0;
  guint labels = 0;

  for (;;) {
    guint8 c;

    if (pos >= len)
      return FALSE;
    c = msg[pos];
    if ((c & 0xc0) == 0xc0) {
      gsize target;

      if (pos + 1 >= len)
        return FALSE;
      target = ((gsize)(c & 0x3f) << 8) | msg[pos + 1];
      if (target >= run_start)
        return FALSE;
      if (!jumped)
        end = pos + 2;
      jumped = TRUE;
      pos = run_start = target;
      continue;
    }
    /* 0x40 and 0x80 are the extended and reserved label types, i.e. a
     * length above 63. */
    if ((c & 0xc0) != 0)
      return FALSE;
    if (c == 0) {
      if (n + 1 > 255)
        return FALSE;
      out[n++] = 0;
      pos++;
      break;
    }
    if (pos + 1 + c > len)
      return FALSE;
    /* Room for this label and the root's 0: a name is at most 255 bytes. */
    if (n + 1 + c + 1 > 255)
      return FALSE;
    memcpy (out + n, msg + pos, 1 + (gsize)c);
    n += 1 + (gsize)c;
    pos += 1 + (gsize)c;
    labels++;
  }
  *offset = jumped ? end : pos;
  *out_len = n;
  *nlabels = labels;
  return TRUE;
}

/* One resource record of the additional section: an OPT is remembered,
 * anything else (a TSIG, say) is skipped. */
static gboolean
read_additional (const guint8 *msg, gsize len, gsize *offset, BangerDnsQuery *q, guint *opts)
{
  guint8 name[255];
  gsize name_len = 0;
  guint nlabels = 0;
  gsize pos = *offset;
  guint16 type;
  guint16 rdlen;

  if (!read_name (msg, len, &pos, name, &name_len, &nlabels))
    return FALSE;
  if (pos + 10 > len)
    return FALSE;
  type = get_u16 (msg + pos);
  rdlen = get_u16 (msg + pos + 8);
  if (pos + 10 + rdlen > len)
    return FALSE;
  if (type == BANGER_DNS_TYPE_OPT) {
    gsize o = pos + 10;
    gsize o_end = o + rdlen;

    /* RFC 6891 6.1.1: one OPT, owned by the root. */
    if (++(*opts) > 1 || nlabels != 0)
      return FALSE;
    q->edns = TRUE;
    q->edns_version = msg[pos + 5];
    /* The options are skipped, but they must tile the RDATA exactly. */
    while (o < o_end) {
      if (o + 4 > o_end || o + 4 + get_u16 (msg + o + 2) > o_end)
        return FALSE;
      o += 4 + get_u16 (msg + o + 2);
    }
  }
  *offset = pos + 10 + rdlen;
  return TRUE;
}

int
banger_dns_parse_query (const guint8 *msg, gsize len, BangerDnsQuery *q)
{
  guint16 flags, ancount, nscount, arcount;
  gsize pos = HEADER_LEN;
  guint opts = 0;

  memset (q, 0, sizeof *q);
  if (msg == NULL || len < HEADER_LEN)
    return -1;
  q->id = get_u16 (msg);
  flags = get_u16 (msg + 2);
  if (flags & FLAG_QR)
    return -1;
  q->opcode = (flags >> 11) & 0xf;
  q->rd = (flags & FLAG_RD) != 0;
  q->qdcount = get_u16 (msg + 4);
  ancount = get_u16 (msg + 6);
  nscount = get_u16 (msg + 8);
  arcount = get_u16 (msg + 10);

  if (q->opcode != 0)
    return BANGER_DNS_RCODE_NOTIMP;
  /* A query asks one question and carries no answers or authority (the
   * rule unbound applies too); extra records only come in additional. */
  if (q->qdcount != 1 || ancount != 0 || nscount != 0)
    return BANGER_DNS_RCODE_FORMERR;
  if (!read_name (msg, len, &pos, q->qname, &q->qname_len, &q->nlabels))
    return BANGER_DNS_RCODE_FORMERR;
  if (pos + 4 > len)
    return BANGER_DNS_RCODE_FORMERR;
  q->qtype = get_u16 (msg + pos);
  q->qclass = get_u16 (msg + pos + 2);
  pos += 4;
  /* Each record takes at least 11 bytes, so a huge ARCOUNT runs out of
   * packet long before it runs out of count. */
  for (guint i = 0; i < arcount; i++) {
    if (!read_additional (msg, len, &pos, q, &opts))
      return BANGER_DNS_RCODE_FORMERR;
  }
  /* Bytes after the last record are ignored, as most servers do. */
  return BANGER_DNS_RCODE_NOERROR;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
  guint8 *buf;
  gsize size;
  gsize len;
  gboolean overflow;
} Writer;

static void
put_bytes (Writer *w, const void *data, gsize n)
{
  if (w->overflow || n > w->size - w->len) {
    w->overflow = TRUE;
    return;
  }
  memcpy (w->buf + w->len, data, n);
  w->len += n;
}

static void
put_u16 (Writer *w, guint16 v)
{
  guint8 b[2] = { v >> 8, v & 0xff };
  put_bytes (w, b, sizeof b);
}

static void
put_u32 (Writer *w, guint32 v)
{
  guint8 b[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };
  put_bytes (w, b, sizeof b);
}

static void
put_header (Writer *w, const BangerDnsQuery *q, guint16 flags, int rcode, guint16 qd, guint16 an,
            guint16 ns, guint16 ar)
{
  put_u16 (w, q->id);
  put_u16 (w, FLAG_QR | ((guint16)q->opcode << 11) | flags | (q->rd ? FLAG_RD : 0) | (rcode & 0xf));
  put_u16 (w, qd);
  put_u16 (w, an);
  put_u16 (w, ns);
  put_u16 (w, ar);
}

static void
put_soa (Writer *w)
{
  put_bytes (w, zone_name, sizeof zone_name);
  put_u16 (w, BANGER_DNS_TYPE_SOA);
  put_u16 (w, BANGER_DNS_CLASS_IN);
  put_u32 (w, BANGER_DNS_TTL);
  put_u16 (w, sizeof zone_name + sizeof soa_rname + 5 * 4);
  put_bytes (w, zone_name, sizeof zone_name);
  put_bytes (w, soa_rname, sizeof soa_rname);
  put_u32 (w, 1);    /* serial: the zone has no versions */
  put_u32 (w, 3600); /* refresh, retry, expire: nobody transfers it */
  put_u32 (w, 600);
  put_u32 (w, 86400);
  put_u32 (w, BANGER_DNS_TTL); /* minimum: the negative-caching TTL */
}

static void
put_opt (Writer *w, int rcode)
{
  put_bytes (w, "", 1); /* the root name */
  put_u16 (w, BANGER_DNS_TYPE_OPT);
  put_u16 (w, BANGER_DNS_EDNS_UDP_SIZE);
  /* TTL field: extended rcode, version 0, no flags (no DNSSEC here). */
  put_u32 (w, (guint32)((rcode >> 4) & 0xff) << 24);
  put_u16 (w, 0);
}

/* Lower-cases the label of @q starting at @offset into @out (NUL
 * terminated); FALSE if it holds anything a VM name cannot. */
static gboolean
vm_label (const BangerDnsQuery *q, gsize offset, char out[64])
{
  guint8 n = q->qname[offset];

  for (guint i = 0; i < n; i++) {
    char c = g_ascii_tolower ((char)q->qname[offset + 1 + i]);

    if (!(g_ascii_islower (c) || g_ascii_isdigit (c) || c == '-'))
      return FALSE;
    out[i] = c;
  }
  out[n] = '\0';
  return n > 0;
}

/* Whether the last label of the question is "vm" (any case). */
static gboolean
in_zone (const BangerDnsQuery *q)
{
  gsize pos = 0;
  gsize last = 0;

  if (q->nlabels == 0)
    return FALSE;
  while (q->qname[pos] != 0) {
    last = pos;
    pos += 1 + q->qname[pos];
  }
  return q->qname[last] == 2 && g_ascii_tolower (q->qname[last + 1]) == 'v'
         && g_ascii_tolower (q->qname[last + 2]) == 'm';
}

gsize
banger_dns_answer (const guint8 *msg, gsize len, BangerDnsLookupFunc lookup, gpointer user_data,
                   guint8 *reply, gsize reply_size, int *rcode_out)
{
  BangerDnsQuery q;
  Writer w = { reply, reply_size, 0, FALSE };
  int rcode = banger_dns_parse_query (msg, len, &q);
  gboolean answer_a = FALSE;
  gboolean answer_soa = FALSE;
  gboolean authority_soa = FALSE;
  guint8 addr[4] = { 0 };
  guint16 flags = 0;

  if (rcode_out != NULL)
    *rcode_out = rcode;
  if (rcode < 0 || reply == NULL || reply_size < BANGER_DNS_REPLY_MAX)
    return 0;
  if (rcode != BANGER_DNS_RCODE_NOERROR) {
    /* Nothing past the header can be trusted: it is not echoed. */
    put_header (&w, &q, 0, rcode, 0, 0, 0, 0);
    return w.overflow ? 0 : w.len;
  }

  if (q.edns && q.edns_version != 0) {
    rcode = BANGER_DNS_RCODE_BADVERS;
  } else if ((q.qclass != BANGER_DNS_CLASS_IN && q.qclass != BANGER_DNS_CLASS_ANY)
             || !in_zone (&q)) {
    /* Not ours, and banger is no recursive resolver. */
    rcode = BANGER_DNS_RCODE_REFUSED;
  } else {
    flags |= FLAG_AA;
    if (q.nlabels == 1) {
      /* The apex "vm." exists and holds the SOA. */
      if (q.qtype == BANGER_DNS_TYPE_SOA || q.qtype == BANGER_DNS_TYPE_ANY)
        answer_soa = TRUE;
      else
        authority_soa = TRUE;
    } else {
      char name[64];
      BangerDnsLookup found = BANGER_DNS_LOOKUP_NOT_FOUND;

      /* "<name>.vm" only: deeper names under a VM do not exist. */
      if (q.nlabels == 2 && vm_label (&q, 0, name))
        found = lookup (name, addr, user_data);
      if (found == BANGER_DNS_LOOKUP_FAILED) {
        flags = 0;
        rcode = BANGER_DNS_RCODE_SERVFAIL;
      } else if (found == BANGER_DNS_LOOKUP_NOT_FOUND) {
        rcode = BANGER_DNS_RCODE_NXDOMAIN;
        authority_soa = TRUE;
      } else if (q.qtype == BANGER_DNS_TYPE_A || q.qtype == BANGER_DNS_TYPE_ANY) {
        answer_a = TRUE;
      } else {
        /* NODATA: the name exists, without this type (AAAA: VMs have no
         * IPv6); the SOA lets the asker cache that. */
        authority_soa = TRUE;
      }
    }
  }
  if (rcode_out != NULL)
    *rcode_out = rcode;

  put_header (&w, &q, flags, rcode & 0xf, 1, answer_a || answer_soa, authority_soa, q.edns);
  put_bytes (&w, q.qname, q.qname_len);
  put_u16 (&w, q.qtype);
  put_u16 (&w, q.qclass);
  if (answer_a) {
    put_u16 (&w, 0xc000 | HEADER_LEN); /* the question's name */
    put_u16 (&w, BANGER_DNS_TYPE_A);
    put_u16 (&w, BANGER_DNS_CLASS_IN);
    put_u32 (&w, BANGER_DNS_TTL);
    put_u16 (&w, sizeof addr);
    put_bytes (&w, addr, sizeof addr);
  }
  if (answer_soa || authority_soa)
    put_soa (&w);
  if (q.edns)
    put_opt (&w, rcode);
  return w.overflow ? 0 : w.len;
}
