#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The DNS wire format (RFC 1035, EDNS0 from RFC 6891) for the one zone
 * banger serves, "vm.": a query is parsed and its reply written by hand,
 * bounds-checked at every byte, with no socket or store in sight so the
 * unit tests can feed it anything. docs/dns.md has the answer rules. */

enum {
  BANGER_DNS_RCODE_NOERROR = 0,
  BANGER_DNS_RCODE_FORMERR = 1,
  BANGER_DNS_RCODE_SERVFAIL = 2,
  BANGER_DNS_RCODE_NXDOMAIN = 3,
  BANGER_DNS_RCODE_NOTIMP = 4,
  BANGER_DNS_RCODE_REFUSED = 5,
  /* Extended (EDNS0) rcode: the upper 8 bits travel in the OPT record. */
  BANGER_DNS_RCODE_BADVERS = 16,
};

enum {
  BANGER_DNS_TYPE_A = 1,
  BANGER_DNS_TYPE_NS = 2,
  BANGER_DNS_TYPE_SOA = 6,
  BANGER_DNS_TYPE_AAAA = 28,
  BANGER_DNS_TYPE_OPT = 41,
  BANGER_DNS_TYPE_ANY = 255,
};

#define BANGER_DNS_CLASS_IN  1
#define BANGER_DNS_CLASS_ANY 255

/* The largest reply banger_dns_answer() writes: a 255-byte name, one SOA
 * and an OPT record come to 331 bytes, so every reply fits the classic
 * 512-byte UDP limit and truncation never arises. */
#define BANGER_DNS_REPLY_MAX 512

/* What the UDP socket advertises in its OPT record (the DNS flag day 2020
 * size: no fragmentation on any usual path). */
#define BANGER_DNS_EDNS_UDP_SIZE 1232

/* The TTL of every record banger serves (answers and the SOA, hence the
 * negative-caching time too): 0, so no cache ever holds an address past
 * the VM's stop or a "no such VM" past its creation. */
#define BANGER_DNS_TTL 0

typedef enum {
  BANGER_DNS_LOOKUP_FOUND,
  BANGER_DNS_LOOKUP_NOT_FOUND,
  BANGER_DNS_LOOKUP_FAILED, /* → SERVFAIL */
} BangerDnsLookup;

/* Resolves a VM name (the label before ".vm", lower-cased, only
 * [a-z0-9-], 1..63 bytes) to the 4 bytes of its IPv4 address. */
typedef BangerDnsLookup (*BangerDnsLookupFunc) (const char *vm_name, guint8 addr[4],
                                                gpointer user_data);

/* A parsed query. The name is kept in wire form exactly as the client
 * spelled it (compression pointers expanded): the question must be echoed
 * with its case intact (resolvers that randomise case, "0x20", compare). */
typedef struct {
  guint16 id;
  guint8 opcode;
  gboolean rd;
  guint16 qdcount;
  guint8 qname[255];
  gsize qname_len; /* bytes in qname, including the root's 0 */
  guint nlabels;   /* labels before the root */
  guint16 qtype;
  guint16 qclass;
  gboolean edns; /* an OPT record came with the query */
  guint8 edns_version;
} BangerDnsQuery;

/* Parses @len bytes at @msg into @query. Returns -1 when the packet is to
 * be dropped without a word (shorter than a header, or itself a response:
 * answering those would let two servers bounce packets forever), else the
 * rcode the parse calls for: NOERROR (the query is whole), FORMERR
 * (malformed; @query holds at least the header) or NOTIMP (not a QUERY). */
int banger_dns_parse_query (const guint8 *msg, gsize len, BangerDnsQuery *query);

/* Answers the query in @msg: writes the reply into @reply (@reply_size
 * must be at least BANGER_DNS_REPLY_MAX) and returns its length, or 0 when
 * no reply is due. @rcode_out (nullable) gets the reply's rcode (extended
 * rcodes included), -1 when dropped. */
gsize banger_dns_answer (const guint8 *msg, gsize len, BangerDnsLookupFunc lookup,
                         gpointer user_data, guint8 *reply, gsize reply_size, int *rcode_out);

G_END_DECLS
