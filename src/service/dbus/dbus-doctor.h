#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* Manager.Doctor (doctor.h) and Manager.ResolveName. */
void banger_dbus_doctor_attach (BangerManager *skeleton, BangerEngine *engine);

G_END_DECLS
