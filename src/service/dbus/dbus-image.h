#pragma once

#include "banger-dbus.h"
#include "engine.h"

G_BEGIN_DECLS

/* One org.banger.Image object per image (/org/banger/Manager/images/<escaped
 * name>), kept in step with the image list, with UsedBy following the VMs; and
 * the Manager's BuildImage, RegisterImage and DeleteImage methods. */
void banger_dbus_images_attach (BangerManager *skeleton, GDBusObjectManagerServer *object_manager,
                                BangerEngine *engine);

char *banger_dbus_image_object_path (const char *name);

G_END_DECLS
