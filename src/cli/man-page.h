#pragma once

#include <stdio.h>

#include "cli.h"

G_BEGIN_DECLS

/* banger(1) in roff, written from the command table: every command with
 * its parameters, summary and options, the very rows `--help` prints, so
 * the page cannot drift from the help (tests/cli checks both agree). In
 * English: the installed page is the untranslated one. */
void banger_man_page_print (FILE *out);

/* The hidden `banger __man` that meson runs at build time. */
extern const BangerCommand banger_man_command;

G_END_DECLS
