/* The rest of bangerd that a parser's file refers to but a harness never
 * reaches (the registry client behind the manifest parser, the VM runtime
 * behind the CopyOut pump, the guest agent's event loop around its
 * dispatch). Weak, so a target that compiles the real file gets the real
 * one; reaching a stub is a harness bug and aborts loudly. */
#include <stdio.h>
#include <stdlib.h>

#define STUB(name)                                                                                 \
  void name (void) __attribute__ ((weak));                                                         \
  void name (void)                                                                                 \
  {                                                                                                \
    fprintf (stderr, "fuzz harness reached the stub %s\n", #name);                                 \
    abort ();                                                                                      \
  }

/* src/agent (guest): the event loop's side of exec, files, setup, init */
STUB (exec_child_exited)
STUB (exec_read_output)
STUB (exec_write_stdin)
STUB (files_get_pump)
STUB (init_poweroff)
STUB (setup_child_exited)
STUB (transport_attach_guest)
/* src/service: the registry, the cache, the VM runtime */
STUB (banger_blob_cache_ensure)
STUB (banger_blob_cache_free)
STUB (banger_blob_cache_new)
STUB (banger_blob_cache_put_bytes)
STUB (banger_ext4_writer_add_file_data)
STUB (banger_ext4_writer_finish)
STUB (banger_ext4_writer_free)
STUB (banger_ext4_writer_mkdir)
STUB (banger_ext4_writer_new)
STUB (banger_oci_layer_apply)
STUB (banger_oci_layer_free)
STUB (banger_oci_layer_get_data_bytes)
STUB (banger_oci_layer_get_entries)
STUB (banger_oci_layer_scan)
STUB (banger_oci_registry_free)
STUB (banger_oci_registry_get_manifest)
STUB (banger_oci_registry_new)
STUB (banger_oci_rootfs_size)
STUB (banger_oci_host_allows_http)
STUB (banger_config_dir)
STUB (banger_config_dup_catalog_url)
STUB (banger_http_session_new)
STUB (banger_guest_agent_write)
STUB (banger_vm_runtime_exec_async)
STUB (banger_vm_runtime_exec_finish)
STUB (banger_vm_runtime_signal_exec)
