#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The versions of the host programs banger drives that it supports: the one
 * place the range is defined (docs/cli.md, "Doctor", lists it). A version
 * below the minimum lacks something banger uses and fails the doctor; one
 * at or above the "untested" bound has not been tried and only warns.
 *
 * QEMU: 7.0 is the first with everything the qemu driver uses together
 * (microvm with ACPI device discovery, virtio-serial on it, QMP `quit` that
 * removes the pidfile); Debian 12 ships 7.2, which the tests run. 10.0
 * changed machine-type defaults we have not tried.
 * Firecracker and its jailer: 1.10 is the oldest release with the API the
 * firecracker driver speaks (the contract it is written against is
 * v1.16.1); 2.0 may change that API. The jailer must be Firecracker's own
 * release (they are built and shipped together). */
#define BANGER_QEMU_MIN_VERSION         "7.0.0"
#define BANGER_QEMU_UNTESTED_VERSION    "10.0.0"
#define BANGER_FC_MIN_VERSION           "1.10.0"
#define BANGER_FC_UNTESTED_VERSION      "2.0.0"

/* "X.Y[.Z]" found after @prefix in @text (e.g. "QEMU emulator version "), as
 * a normalised "X.Y.Z"; NULL if absent. */
char *banger_doctor_parse_version (const char *text, const char *prefix);

/* strcmp-like order of two "X.Y[.Z]" strings (missing parts are 0, a
 * trailing non-numeric suffix is ignored). */
int banger_doctor_version_compare (const char *a, const char *b);

G_END_DECLS
