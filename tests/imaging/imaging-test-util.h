#pragma once

/* Helpers for the imaging tests: run e2fsprogs against an image as a user
 * would, and read what they print. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* Runs @argv, returns its stdout; *status_out gets the wait status' exit
 * code (or -1 if it did not exit). stderr is returned in *stderr_out if
 * given. */
char *imaging_run (const char *const *argv, int *status_out, char **stderr_out);

/* `debugfs -R CMD IMG`: stdout. */
char *imaging_debugfs (const char *image, const char *cmd);

/* `e2fsck -fn IMG` exits 0 (asserts, printing its output otherwise). */
void imaging_assert_fsck_clean (const char *image);

/* The first number after @key in `debugfs stat` output, or -1. */
gint64 imaging_stat_field (const char *stat_output, const char *key);

/* `debugfs dump PATH` of @image into memory. */
GBytes *imaging_dump (const char *image, const char *path);

/* A new empty directory under the test's temporary directory. */
char *imaging_tmpdir (void);

/* Removes a directory tree (the test's own files). */
void imaging_rm_rf (const char *path);

G_END_DECLS
