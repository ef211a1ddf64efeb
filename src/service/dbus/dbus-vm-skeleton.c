#include "dbus-vm-skeleton.h"

struct _BangerDbusVmSkeleton {
  BangerVMSkeleton parent_instance;
  GMutex lock;          /* the setters may run on another thread than a GetManagedObjects */
  GVariant *properties; /* a{sv}, or NULL once a property changed */
};

G_DEFINE_FINAL_TYPE (BangerDbusVmSkeleton, banger_dbus_vm_skeleton, BANGER_TYPE_VM_SKELETON)

static GVariant *
banger_dbus_vm_skeleton_get_properties (GDBusInterfaceSkeleton *skeleton)
{
  BangerDbusVmSkeleton *self = BANGER_DBUS_VM_SKELETON (skeleton);
  GDBusInterfaceSkeletonClass *parent
      = G_DBUS_INTERFACE_SKELETON_CLASS (banger_dbus_vm_skeleton_parent_class);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  if (self->properties == NULL)
    self->properties = g_variant_ref_sink (parent->get_properties (skeleton));
  /* (transfer full), as GDBusInterfaceSkeleton's get_properties returns. */
  return g_variant_ref (self->properties);
}

/* Runs for every property whose value changed, from the setter (or when
 * notifications thaw): the kept a{sv} is out of date from here on. */
static void
banger_dbus_vm_skeleton_notify (GObject *object, GParamSpec *pspec)
{
  BangerDbusVmSkeleton *self = BANGER_DBUS_VM_SKELETON (object);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->properties, g_variant_unref);
  g_mutex_unlock (&self->lock);
  /* The generated skeleton schedules PropertiesChanged here. */
  if (G_OBJECT_CLASS (banger_dbus_vm_skeleton_parent_class)->notify != NULL)
    G_OBJECT_CLASS (banger_dbus_vm_skeleton_parent_class)->notify (object, pspec);
}

static void
banger_dbus_vm_skeleton_finalize (GObject *object)
{
  BangerDbusVmSkeleton *self = BANGER_DBUS_VM_SKELETON (object);

  g_clear_pointer (&self->properties, g_variant_unref);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (banger_dbus_vm_skeleton_parent_class)->finalize (object);
}

static void
banger_dbus_vm_skeleton_class_init (BangerDbusVmSkeletonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS (klass);

  object_class->notify = banger_dbus_vm_skeleton_notify;
  object_class->finalize = banger_dbus_vm_skeleton_finalize;
  skeleton_class->get_properties = banger_dbus_vm_skeleton_get_properties;
}

static void
banger_dbus_vm_skeleton_init (BangerDbusVmSkeleton *self)
{
  g_mutex_init (&self->lock);
}

BangerVM *
banger_dbus_vm_skeleton_new (void)
{
  return BANGER_VM (g_object_new (BANGER_TYPE_DBUS_VM_SKELETON, NULL));
}
