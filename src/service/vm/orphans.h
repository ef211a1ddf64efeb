#pragma once

#include "vm-list.h"

G_BEGIN_DECLS

/* Start-up cleanup: a bangerd killed mid-pull, mid-build, mid-import or
 * mid-promote leaves <data>/images/<id>/ or <data>/kernels/<id>/ without a
 * record in the store (records are written last), and one killed between
 * deleting a VM's record and its directory leaves <data>/vms/<id>/. Those directories are
 * removed; a directory whose name is not an id banger makes (16 hex
 * digits) is left alone, whatever it holds. Call it once, from main(),
 * after the engine is created and before the bus name is owned — no job
 * can be running then. Returns how many directories were removed; errors
 * are only logged (a leftover costs disk space, never correctness). */
guint banger_orphans_remove (BangerVmList *engine);

G_END_DECLS
