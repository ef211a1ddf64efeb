/* Network set-up of the guest from banger.ip=/gw=/hostname=/dns= (netconf.c). */
#pragma once

#include <stddef.h>

int netconf_apply (const char *ip_cidr, const char *gw, char *err, size_t errlen);
void netconf_files (const char *root, const char *hostname, const char *dns);
