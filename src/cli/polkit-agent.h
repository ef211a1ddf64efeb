#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Registers polkit's text authentication agent for this process, so a
 * helper call with "interactive" can ask for a password on the terminal
 * when no graphical agent runs. Returns a handle for
 * banger_polkit_agent_unregister(), or NULL when it could not register
 * (no terminal, an agent already exists, no polkitd): not fatal, the call
 * then goes ahead without a fallback and polkit decides. */
gpointer banger_polkit_agent_register (void);
void banger_polkit_agent_unregister (gpointer handle);

G_END_DECLS
