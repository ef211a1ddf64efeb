/* The HTTP session every download shares its setup with (http-session.h). */
#include "http-session.h"

#include <config.h>

SoupSession *
banger_http_session_new (void)
{
  return soup_session_new_with_options ("user-agent", "banger/" PACKAGE_VERSION, "timeout", 60,
                                        "idle-timeout", 30, NULL);
}
