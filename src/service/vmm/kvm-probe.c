#include "kvm-probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit codes of the probing child, so the parent can say what failed. */
enum {
  PROBE_OK = 0,
  PROBE_OPEN = 10,
  PROBE_API,
  PROBE_CREATE_VM,
  PROBE_MEMORY,
  PROBE_VCPU,
  PROBE_REGS,
  PROBE_RUN,
  PROBE_NOT_HLT,
};

static const char *
probe_reason (int code)
{
  switch (code) {
  case PROBE_OPEN:
    return "cannot open the KVM device";
  case PROBE_API:
    return "unexpected KVM API version";
  case PROBE_CREATE_VM:
    return "KVM_CREATE_VM failed (no hardware virtualisation?)";
  case PROBE_MEMORY:
    return "cannot give the probe VM memory";
  case PROBE_VCPU:
    return "KVM_CREATE_VCPU failed";
  case PROBE_REGS:
    return "cannot set the probe vCPU's registers";
  case PROBE_RUN:
    return "KVM_RUN failed";
  case PROBE_NOT_HLT:
    return "the probe vCPU did not stop at its hlt instruction";
  default:
    return "the probe failed";
  }
}

/* Runs in the forked child: only syscalls, then _exit. */
static int G_GNUC_NORETURN
probe_child (const char *dev_path)
{
  int kvm, vm, vcpu;
  void *mem;
  struct kvm_run *run;
  long run_size;
  struct kvm_userspace_memory_region region = { 0 };
  struct kvm_sregs sregs;
  struct kvm_regs regs = { 0 };

  kvm = open (dev_path, O_RDWR | O_CLOEXEC);
  if (kvm < 0)
    _exit (PROBE_OPEN);
  if (ioctl (kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
    _exit (PROBE_API);
  vm = ioctl (kvm, KVM_CREATE_VM, 0);
  if (vm < 0)
    _exit (PROBE_CREATE_VM);
  mem = mmap (NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    _exit (PROBE_MEMORY);
  ((unsigned char *)mem)[0] = 0xf4; /* hlt */
  region.slot = 0;
  region.guest_phys_addr = 0x1000;
  region.memory_size = 0x1000;
  region.userspace_addr = (unsigned long)mem;
  if (ioctl (vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    _exit (PROBE_MEMORY);
  vcpu = ioctl (vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0)
    _exit (PROBE_VCPU);
  run_size = ioctl (kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0)
    _exit (PROBE_VCPU);
  run = mmap (NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED)
    _exit (PROBE_VCPU);
  if (ioctl (vcpu, KVM_GET_SREGS, &sregs) < 0)
    _exit (PROBE_REGS);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl (vcpu, KVM_SET_SREGS, &sregs) < 0)
    _exit (PROBE_REGS);
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (ioctl (vcpu, KVM_SET_REGS, &regs) < 0)
    _exit (PROBE_REGS);
  if (ioctl (vcpu, KVM_RUN, 0) < 0)
    _exit (PROBE_RUN);
  _exit (run->exit_reason == KVM_EXIT_HLT ? PROBE_OK : PROBE_NOT_HLT);
}

/* TRUE if /proc/cpuinfo lists vmx or svm. Some sandboxes offer a /dev/kvm
 * that creates VMs and even runs a lone hlt, yet real guests hang or QEMU
 * aborts setting MSRs; they do not advertise the CPU flags. */
static gboolean
cpu_has_virt_flags (void)
{
  g_autofree char *cpuinfo = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    return FALSE;
  lines = g_strsplit (cpuinfo, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_str_has_prefix (lines[i], "flags")) {
      g_auto (GStrv) words = g_strsplit_set (lines[i], " \t", -1);
      for (guint j = 0; words[j] != NULL; j++) {
        if (g_str_equal (words[j], "vmx") || g_str_equal (words[j], "svm"))
          return TRUE;
      }
      return FALSE;
    }
  }
  return FALSE;
}

gboolean
banger_kvm_probe (const char *dev_path, guint timeout_ms, char **reason)
{
  pid_t pid;
  int pidfd, status = 0;
  struct pollfd pfd;
  int ready;

  if (access (dev_path, R_OK | W_OK) != 0) {
    if (reason)
      *reason = g_strdup_printf ("%s: %s", dev_path, g_strerror (errno));
    return FALSE;
  }
  if (!cpu_has_virt_flags ()) {
    if (reason)
      *reason = g_strdup_printf ("%s exists but the CPU advertises neither vmx nor svm", dev_path);
    return FALSE;
  }

  pid = fork ();
  if (pid < 0) {
    if (reason)
      *reason = g_strdup_printf ("fork: %s", g_strerror (errno));
    return FALSE;
  }
  if (pid == 0)
    probe_child (dev_path);

  /* Wait on a pidfd so a hung KVM_RUN is noticed without polling. */
  pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) {
    pfd.fd = pidfd;
    pfd.events = POLLIN;
    do
      ready = poll (&pfd, 1, (int)timeout_ms);
    while (ready < 0 && errno == EINTR);
    close (pidfd);
  } else {
    ready = 1; /* kernel without pidfd: fall back to a blocking wait below */
  }
  if (ready == 0) {
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    if (reason)
      *reason = g_strdup_printf (
          "KVM_RUN did not return within %u ms (KVM present but not working)", timeout_ms);
    return FALSE;
  }
  if (waitpid (pid, &status, 0) < 0) {
    if (reason)
      *reason = g_strdup_printf ("waitpid: %s", g_strerror (errno));
    return FALSE;
  }
  if (WIFEXITED (status) && WEXITSTATUS (status) == PROBE_OK)
    return TRUE;
  if (reason)
    *reason = g_strdup_printf ("%s: %s", dev_path,
                               WIFEXITED (status) ? probe_reason (WEXITSTATUS (status))
                                                  : "the probe process crashed");
  return FALSE;
}
