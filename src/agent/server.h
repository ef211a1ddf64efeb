/* The guest agent's event loop (server.c), the top of the agent: it reads
 * frames from the host and dispatches them to the handlers below it. */
#pragma once

#include "connection.h"

/* Serves until @agent->quit; 0, or 1 when the loop itself failed. */
int agent_serve (Agent *agent);
