/*
 * itguest: the kernel oracle's guest program. Runs scenario files (deploy/kernel-oracle/scenarios/NAME.scn)
 * against the real kernel: every step is the real call (open, ioctl, close, sysfs write) and is recorded
 * with its real outcome (errno) and the ids the kernel returned, one JSON object per line, on the
 * record channel (argv[1], the second serial port). The host turns the records into catalogue events
 * (services/kernelOracle/toEvents.ts).
 *
 * Environment (from the kernel command line, through /init):
 *   ITROLES  role=BDF,... (e.g. single=0000:00:03.0); `$role` in a scenario names that device
 *   ITSCEN   scenario names to run, in order (files /scenarios/<name>.scn)
 *
 * Between scenarios every device goes back to the driver it had at boot (not recorded: each scenario is
 * its own history, starting from its own sysfs snapshot).
 *
 * Built with gcc -static against the `make headers` uAPI of the kernel it runs on.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#define MAX_NAMES 128
#define MAX_DEVS 64
#define LINE 1024

static FILE *rec;

/* ---- output ------------------------------------------------------------------------------------- */

static void jstr(const char *s) {
  fputc('"', rec);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(rec, "\\%c", c);
    else if (c < 0x20) fprintf(rec, "\\u%04x", c);
    else fputc(c, rec);
  }
  fputc('"', rec);
}

static unsigned long long now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* ---- sysfs helpers ------------------------------------------------------------------------------ */

static int read_text(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  return 0;
}

/* the errno of a sysfs write (0 on success) */
static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

static int link_base(const char *path, char *out, size_t len) {
  char buf[512];
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  if (n < 0) return -1;
  buf[n] = 0;
  const char *slash = strrchr(buf, '/');
  snprintf(out, len, "%s", slash ? slash + 1 : buf);
  return 0;
}

static int driver_of(const char *bdf, char *out, size_t len) {
  char p[256];
  snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver", bdf);
  return link_base(p, out, len);
}

static int group_of(const char *bdf) {
  char p[256], g[64];
  snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/iommu_group", bdf);
  if (link_base(p, g, sizeof g) < 0) return -1;
  return atoi(g);
}

static int cdev_of(const char *bdf, char *out, size_t len) {
  char p[256];
  snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/vfio-dev", bdf);
  DIR *d = opendir(p);
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "vfio", 4) == 0) {
      snprintf(out, len, "%s", e->d_name);
      found = 0;
    }
  closedir(d);
  return found;
}

/* ---- roles and names ---------------------------------------------------------------------------- */

static char role_name[MAX_DEVS][32], role_bdf[MAX_DEVS][32], boot_driver[MAX_DEVS][64];
static int roles;

static const char *resolve(const char *arg) {
  if (arg[0] != '$') return arg;
  for (int i = 0; i < roles; i++)
    if (strcmp(role_name[i], arg + 1) == 0) return role_bdf[i];
  fprintf(stderr, "itguest: unknown role %s\n", arg);
  return arg;
}

/* a scenario's names: open files (fd) and iommufd object ids (id) */
enum kind { K_NONE, K_ICTX, K_DEVFD, K_GROUP, K_CONTAINER, K_ID, K_FAULT, K_OTHER };
static struct {
  char name[48];
  enum kind kind;
  int fd;
  unsigned id;
  char dev[32];
  int group;
} names[MAX_NAMES];
static int nnames;

static int find(const char *name) {
  for (int i = nnames - 1; i >= 0; i--)
    if (names[i].kind != K_NONE && strcmp(names[i].name, name) == 0) return i;
  return -1;
}

static int add_name(const char *name, enum kind k) {
  if (nnames >= MAX_NAMES) return -1;
  int i = nnames++;
  snprintf(names[i].name, sizeof names[i].name, "%s", name);
  names[i].kind = k;
  names[i].fd = -1;
  names[i].dev[0] = 0;
  names[i].group = -1;
  return i;
}

static int fd_of(const char *name) {
  int i = find(name);
  return i < 0 ? 999 : names[i].fd; /* an unknown name is a closed fd number: EBADF */
}

/* an object id: a name bound to an earlier call's output, or a literal number */
static unsigned id_of(const char *arg) {
  int i = find(arg);
  if (i >= 0 && (names[i].kind == K_ID || names[i].kind == K_FAULT)) return names[i].id;
  return (unsigned)strtoul(arg, NULL, 0);
}

/* ---- recording ---------------------------------------------------------------------------------- */

struct result {
  int err; /* 0 or the errno */
  char out[256]; /* JSON members for the outputs, e.g. "devId":1 */
};

static int opt_num(int argc, char **argv, const char *key, long long *v) {
  size_t k = strlen(key);
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') {
      *v = strtoll(argv[i] + k + 1, NULL, 0);
      return 1;
    }
  return 0;
}

/*
 * The collector's inputs, shipped raw (the collector's own parsers read them on the host,
 * services/kernelOracle/collectorInputs.ts): every kernel uevent datagram (NETLINK_KOBJECT_UEVENT,
 * group 1) as hex, every trace_pipe line as read, and the sysfs files readTopology reads.
 */
static int uevent_sock = -1, trace_pipe = -1;
static char trace_rest[4096];
static size_t trace_rest_len;

static void open_signals(void) {
  struct sockaddr_nl nl = {.nl_family = AF_NETLINK, .nl_groups = 1};
  uevent_sock = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  if (uevent_sock >= 0) {
    int sz = 1 << 20;
    setsockopt(uevent_sock, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (bind(uevent_sock, (struct sockaddr *)&nl, sizeof nl) < 0) {
      close(uevent_sock);
      uevent_sock = -1;
    }
  }
  trace_pipe = open("/sys/kernel/tracing/trace_pipe", O_RDONLY | O_NONBLOCK);
  fprintf(rec, "{\"t\":\"signals\",\"uevents\":%s,\"tracePipe\":%s}\n", uevent_sock >= 0 ? "true" : "false", trace_pipe >= 0 ? "true" : "false");
}

static void emit_trace_line(const char *line, size_t n) {
  char buf[4200];
  if (n >= sizeof buf) n = sizeof buf - 1;
  memcpy(buf, line, n);
  buf[n] = 0;
  fprintf(rec, "{\"t\":\"trace\",\"line\":");
  jstr(buf);
  fprintf(rec, "}\n");
}

/* every complete trace_pipe line, in order; a partial last line waits for the next read */
static void drain_trace(void) {
  static char buf[65536];
  if (trace_pipe < 0) return;
  for (;;) {
    ssize_t n = read(trace_pipe, buf, sizeof buf);
    if (n <= 0) break;
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
      if (buf[i] != '\n') continue;
      if (trace_rest_len > 0) {
        size_t k = i - start < sizeof trace_rest - trace_rest_len ? i - start : sizeof trace_rest - trace_rest_len;
        memcpy(trace_rest + trace_rest_len, buf + start, k);
        emit_trace_line(trace_rest, trace_rest_len + k);
        trace_rest_len = 0;
      } else emit_trace_line(buf + start, i - start);
      start = i + 1;
    }
    size_t left = (size_t)n - start;
    if (left > sizeof trace_rest - trace_rest_len) left = sizeof trace_rest - trace_rest_len;
    memcpy(trace_rest + trace_rest_len, buf + start, left);
    trace_rest_len += left;
  }
}

static void drain_uevents(void) {
  static unsigned char buf[8192];
  if (uevent_sock < 0) return;
  for (;;) {
    ssize_t n = recv(uevent_sock, buf, sizeof buf, 0);
    if (n < 0 && errno == ENOBUFS) {
      /* the socket overflowed: datagrams were lost, which the host must see (the test fails on it) */
      fprintf(rec, "{\"t\":\"signals\",\"uevents\":false,\"tracePipe\":%s}\n", trace_pipe >= 0 ? "true" : "false");
      continue;
    }
    if (n <= 0) break;
    fprintf(rec, "{\"t\":\"uevent\",\"hex\":\"");
    for (ssize_t i = 0; i < n; i++) fprintf(rec, "%02x", buf[i]);
    fprintf(rec, "\"}\n");
  }
}

static void drain_signals(void) {
  drain_uevents();
  drain_trace();
}

/* one sysfs entry for the host's rebuilt tree: a file's text (hex), a link's target or a directory */
static void sysfs_entry(const char *rel) {
  char p[512], target[512];
  unsigned char buf[4096];
  struct stat st;
  snprintf(p, sizeof p, "/sys/%s", rel);
  if (lstat(p, &st) < 0) return;
  fprintf(rec, "{\"t\":\"sysfs\",\"path\":");
  jstr(rel);
  if (S_ISLNK(st.st_mode)) {
    ssize_t n = readlink(p, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = 0;
    fprintf(rec, ",\"link\":");
    jstr(target);
  } else if (S_ISDIR(st.st_mode)) fprintf(rec, ",\"dir\":true");
  else {
    int fd = open(p, O_RDONLY);
    /* config space: the first 64 bytes are what an unprivileged reader gets, and all readTopology uses */
    ssize_t n = fd < 0 ? -1 : read(fd, buf, strstr(rel, "/config") ? 64 : sizeof buf);
    if (fd >= 0) close(fd);
    fprintf(rec, ",\"hex\":\"");
    for (ssize_t i = 0; i < n; i++) fprintf(rec, "%02x", buf[i]);
    fprintf(rec, "\"");
    if (n < 0) fprintf(rec, ",\"errno\":%d", errno);
  }
  fprintf(rec, "}\n");
}

static void sysfs_dir(const char *rel, void (*each)(const char *rel)) {
  char p[512], child[512];
  snprintf(p, sizeof p, "/sys/%s", rel);
  sysfs_entry(rel);
  DIR *d = opendir(p);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(child, sizeof child, "%s/%s", rel, e->d_name);
    if (each) each(child);
    else sysfs_entry(child);
  }
  if (d) closedir(d);
}

static void sysfs_group(const char *rel) {
  char p[512];
  sysfs_entry(rel);
  snprintf(p, sizeof p, "%s/type", rel);
  sysfs_entry(p);
  snprintf(p, sizeof p, "%s/reserved_regions", rel);
  sysfs_entry(p);
  snprintf(p, sizeof p, "%s/devices", rel);
  sysfs_dir(p, NULL);
}

static void sysfs_device(const char *rel) {
  static const char *const files[] = {"vendor", "device", "class", "config", "driver", "iommu_group"};
  char p[512];
  sysfs_entry(rel);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(p, sizeof p, "%s/%s", rel, files[i]);
    sysfs_entry(p);
  }
  snprintf(p, sizeof p, "/sys/%s/vfio-dev", rel);
  struct stat st;
  if (stat(p, &st) == 0) {
    snprintf(p, sizeof p, "%s/vfio-dev", rel);
    sysfs_dir(p, NULL);
  }
}

/* what services/collector/sysfsTopology.ts reads, nothing more */
static void dump_sysfs(void) {
  sysfs_dir("kernel/iommu_groups", sysfs_group);
  sysfs_dir("bus/pci/devices", sysfs_device);
  sysfs_entry("module/iommufd/parameters/allow_unsafe_interrupts");
  sysfs_entry("module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
  fprintf(rec, "{\"t\":\"sysfs-end\"}\n");
}

static void record(int line, int mistake, int argc, char **argv, const char *out, const struct result *r, const char *extra) {
  fprintf(rec, "{\"t\":\"op\",\"line\":%d,\"mistake\":%s,\"mono\":%llu,\"real\":%llu,\"argv\":[", line, mistake ? "true" : "false",
          now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_REALTIME));
  for (int i = 0; i < argc; i++) {
    if (i) fputc(',', rec);
    jstr(argv[i]);
  }
  fprintf(rec, "],\"errno\":%d", r->err);
  if (out) {
    fprintf(rec, ",\"out\":");
    jstr(out);
  }
  if (r->out[0]) fprintf(rec, ",%s", r->out);
  if (extra && extra[0]) fprintf(rec, ",%s", extra);
  fprintf(rec, "}\n");
  drain_signals();
  fflush(rec);
}

/* ---- snapshot ----------------------------------------------------------------------------------- */

static void snapshot(const char *scenario) {
  /* what restoring the drivers caused belongs to no scenario: shipped before the begin record */
  drain_signals();
  struct utsname u;
  uname(&u);
  char cmdline[1024] = "";
  read_text("/proc/cmdline", cmdline, sizeof cmdline);
  fprintf(rec, "{\"t\":\"begin\",\"scenario\":");
  jstr(scenario);
  fprintf(rec, ",\"release\":");
  jstr(u.release);
  fprintf(rec, ",\"cmdline\":");
  jstr(cmdline);
  fprintf(rec, ",\"real\":%llu,\"mono\":%llu,\"groups\":[", now_ns(CLOCK_REALTIME), now_ns(CLOCK_MONOTONIC));
  DIR *gd = opendir("/sys/kernel/iommu_groups");
  int first = 1;
  struct dirent *g;
  while (gd && (g = readdir(gd))) {
    if (g->d_name[0] == '.') continue;
    char p[256], type[64] = "";
    snprintf(p, sizeof p, "/sys/kernel/iommu_groups/%s/type", g->d_name);
    read_text(p, type, sizeof type);
    fprintf(rec, "%s{\"group\":%s,\"type\":", first ? "" : ",", g->d_name);
    jstr(type);
    fprintf(rec, ",\"devices\":[");
    snprintf(p, sizeof p, "/sys/kernel/iommu_groups/%s/devices", g->d_name);
    DIR *dd = opendir(p);
    struct dirent *d;
    int f2 = 1;
    while (dd && (d = readdir(dd))) {
      if (d->d_name[0] == '.') continue;
      fprintf(rec, "%s", f2 ? "" : ",");
      jstr(d->d_name);
      f2 = 0;
    }
    if (dd) closedir(dd);
    fprintf(rec, "]}");
    first = 0;
  }
  if (gd) closedir(gd);
  fprintf(rec, "],\"devices\":[");
  DIR *pd = opendir("/sys/bus/pci/devices");
  struct dirent *d;
  first = 1;
  while (pd && (d = readdir(pd))) {
    if (d->d_name[0] == '.') continue;
    char p[256], vendor[16] = "", device[16] = "", cls[16] = "", drv[64], cdev[32];
    unsigned char cfg[16] = {0};
    snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/vendor", d->d_name);
    read_text(p, vendor, sizeof vendor);
    snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/device", d->d_name);
    read_text(p, device, sizeof device);
    snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/class", d->d_name);
    read_text(p, cls, sizeof cls);
    snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/config", d->d_name);
    int cf = open(p, O_RDONLY);
    if (cf >= 0) {
      if (read(cf, cfg, sizeof cfg) < 0) cfg[14] = 0;
      close(cf);
    }
    fprintf(rec, "%s{\"device\":", first ? "" : ",");
    jstr(d->d_name);
    fprintf(rec, ",\"vendor\":");
    jstr(vendor);
    fprintf(rec, ",\"deviceId\":");
    jstr(device);
    fprintf(rec, ",\"class\":");
    jstr(cls);
    fprintf(rec, ",\"headerType\":%d,\"group\":%d,\"driver\":", cfg[14] & 0x7f, group_of(d->d_name));
    if (driver_of(d->d_name, drv, sizeof drv) == 0) jstr(drv);
    else fprintf(rec, "null");
    fprintf(rec, ",\"cdev\":");
    if (cdev_of(d->d_name, cdev, sizeof cdev) == 0) jstr(cdev);
    else fprintf(rec, "null");
    fprintf(rec, "}");
    first = 0;
  }
  if (pd) closedir(pd);
  fprintf(rec, "]}\n");
  dump_sysfs();
  fflush(rec);
}

/* ---- the kernel's selftest uAPI (CONFIG_IOMMUFD_TEST) ---------------------------------------------- */

/*
 * drivers/iommu/iommufd/iommufd_test.h of the 6.12 source (not exported by `make headers`): the mock device and
 * domain the kernel's own selftests drive (tools/testing/selftests/iommu/iommufd_utils.h). Only the members the
 * steps use; the union is as large as the kernel's (its biggest member, `dirty`, is 48 bytes).
 */
enum { IOMMU_TEST_OP_MOCK_DOMAIN = 2, IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12 };
struct iommu_test_cmd {
  __u32 size;
  __u32 op;
  __u32 id;
  __u32 __reserved;
  union {
    struct {
      __u32 out_stdev_id;
      __u32 out_hwpt_id;
      __u32 out_idev_id;
      __u32 dev_flags;
    } mock_domain_flags;
    __u8 pad[48];
  };
  __u32 last;
};
#define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)
#define IOMMU_HWPT_DATA_SELFTEST 0xdead
#define IOMMU_TEST_IOTLB_DEFAULT 0xbadbeef
#define IOMMU_HWPT_INVALIDATE_DATA_SELFTEST 0xdeadbeef
struct iommu_hwpt_selftest {
  __u32 iotlb;
};
struct iommu_hwpt_invalidate_selftest {
  __u32 flags;
  __u32 iotlb_id;
};

/* `data=selftest|vtd|none`: the data_type a hwpt alloc or an invalidate passes */
static unsigned data_type_of(int argc, char **argv, unsigned selftest, unsigned vtd) {
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "data=selftest") == 0) return selftest;
    if (strcmp(argv[i], "data=vtd") == 0) return vtd;
  }
  return 0;
}

/* `fault=NAME`: the fault queue a hwpt alloc names (fault_id), by name or number */
static const char *opt_str(int argc, char **argv, const char *key) {
  size_t k = strlen(key);
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') return argv[i] + k + 1;
  return NULL;
}

/* ---- the steps ---------------------------------------------------------------------------------- */

static void *dma_buf;
#define DMA_BUF_LEN (2u << 20)

/* a fixed-IOVA mapping of the scenario's buffer: argv = map|unmap ICTX IOAS IOVA LEN */
static void do_map(int unmap, char **argv, struct result *r) {
  int fd = fd_of(argv[1]);
  unsigned long long iova = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
  if (!unmap) {
    struct iommu_ioas_map m = {.size = sizeof m,
                               .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                               .ioas_id = id_of(argv[2]),
                               .user_va = (uintptr_t)dma_buf,
                               .length = len,
                               .iova = iova};
    r->err = ioctl(fd, IOMMU_IOAS_MAP, &m) ? errno : 0;
    if (!r->err) snprintf(r->out, sizeof r->out, "\"iova\":\"0x%llx\"", (unsigned long long)m.iova);
  } else {
    struct iommu_ioas_unmap m = {.size = sizeof m, .ioas_id = id_of(argv[2]), .iova = iova, .length = len};
    r->err = ioctl(fd, IOMMU_IOAS_UNMAP, &m) ? errno : 0;
    if (!r->err) snprintf(r->out, sizeof r->out, "\"length\":\"0x%llx\"", (unsigned long long)m.length);
  }
}

static int bind_out(const char *out, unsigned id) {
  if (!out) return 0;
  int i = add_name(out, K_ID);
  if (i >= 0) names[i].id = id;
  return 0;
}

/* runs one step; `out` is the name after "->" (or NULL); `extra` gets context members for the record */
static void step(int argc, char **argv, const char *out, struct result *r, char *extra, size_t elen) {
  const char *op = argv[0];
  r->err = 0;
  r->out[0] = 0;
  extra[0] = 0;
  char path[256];
  /* context the host needs to name things: the fd's device and the names' kinds, as they were before the step */
  char ctx[512] = "";
  size_t cu = 0;
  for (int a = 1; a < argc && cu + 96 < sizeof ctx; a++) {
    int i = find(argv[a]);
    if (i < 0) continue;
    const char *k = names[i].kind == K_ICTX ? "ictx" : names[i].kind == K_DEVFD ? "devfd" : names[i].kind == K_GROUP ? "group" : names[i].kind == K_CONTAINER ? "container" : names[i].kind == K_ID ? "id" : names[i].kind == K_FAULT ? "fault" : "other";
    cu += (size_t)snprintf(ctx + cu, sizeof ctx - cu, "%s\"kind%d\":\"%s\"", cu ? "," : "", a, k);
    if (names[i].kind == K_DEVFD) cu += (size_t)snprintf(ctx + cu, sizeof ctx - cu, ",\"dev%d\":\"%s\"", a, names[i].dev);
    if (names[i].kind == K_GROUP) cu += (size_t)snprintf(ctx + cu, sizeof ctx - cu, ",\"group%d\":%d", a, names[i].group);
  }
  if (strcmp(op, "override") == 0) { /* override DEV DRIVER|- */
    const char *bdf = resolve(argv[1]);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", bdf);
    r->err = write_text(path, strcmp(argv[2], "-") == 0 ? "\n" : argv[2]);
    snprintf(extra, elen, "\"device\":\"%s\"", bdf);
  } else if (strcmp(op, "unbind") == 0) { /* unbind DEV */
    const char *bdf = resolve(argv[1]);
    char drv[64] = "";
    if (driver_of(bdf, drv, sizeof drv) < 0) r->err = ENODEV;
    else {
      snprintf(path, sizeof path, "/sys/bus/pci/drivers/%s/unbind", drv);
      r->err = write_text(path, bdf);
    }
    snprintf(extra, elen, "\"device\":\"%s\",\"driver\":\"%s\"", bdf, drv);
  } else if (strcmp(op, "bind") == 0 || strcmp(op, "probe") == 0) { /* bind DEV DRIVER | probe DEV DRIVER */
    const char *bdf = resolve(argv[1]);
    int probe = op[0] == 'p';
    if (probe) snprintf(path, sizeof path, "/sys/bus/pci/drivers_probe");
    else snprintf(path, sizeof path, "/sys/bus/pci/drivers/%s/bind", argv[2]);
    r->err = write_text(path, bdf);
    char drv[64] = "";
    int has = driver_of(bdf, drv, sizeof drv) == 0;
    snprintf(extra, elen, "\"device\":\"%s\",\"driver\":\"%s\",\"after\":%s%s%s", bdf, argv[2], has ? "\"" : "", has ? drv : "null", has ? "\"" : "");
  } else if (strcmp(op, "remove") == 0) { /* remove DEV: software hot-unplug (pci_stop_and_remove_bus_device → iommu_release_device) */
    const char *bdf = resolve(argv[1]);
    char drv[64] = "";
    int had = driver_of(bdf, drv, sizeof drv) == 0, group = group_of(bdf);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/remove", bdf);
    r->err = write_text(path, "1");
    snprintf(extra, elen, "\"device\":\"%s\",\"group\":%d,\"driver\":%s%s%s", bdf, group, had ? "\"" : "", had ? drv : "null", had ? "\"" : "");
  } else if (strcmp(op, "rescan") == 0) { /* rescan: /sys/bus/pci/rescan; the role devices it (re-)added, with their group and driver */
    int present[MAX_DEVS];
    struct stat st;
    for (int i = 0; i < roles; i++) {
      snprintf(path, sizeof path, "/sys/bus/pci/devices/%s", role_bdf[i]);
      present[i] = stat(path, &st) == 0;
    }
    r->err = write_text("/sys/bus/pci/rescan", "1");
    size_t u = (size_t)snprintf(extra, elen, "\"added\":[");
    for (int i = 0, first = 1; i < roles && u + 128 < elen; i++) {
      snprintf(path, sizeof path, "/sys/bus/pci/devices/%s", role_bdf[i]);
      if (present[i] || stat(path, &st) != 0) continue;
      char drv[64] = "";
      int has = driver_of(role_bdf[i], drv, sizeof drv) == 0;
      u += (size_t)snprintf(extra + u, elen - u, "%s{\"device\":\"%s\",\"group\":%d,\"driver\":%s%s%s}", first ? "" : ",", role_bdf[i], group_of(role_bdf[i]),
                            has ? "\"" : "", has ? drv : "null", has ? "\"" : "");
      first = 0;
    }
    snprintf(extra + u, elen - u, "]");
  } else if (strcmp(op, "iommufd") == 0) { /* iommufd NAME */
    int fd = open("/dev/iommu", O_RDWR);
    r->err = fd < 0 ? errno : 0;
    if (fd >= 0) names[add_name(argv[1], K_ICTX)].fd = fd;
  } else if (strcmp(op, "cdev") == 0) { /* cdev FD DEV */
    const char *bdf = resolve(argv[2]);
    char cdev[32] = "";
    int fd = -1;
    if (cdev_of(bdf, cdev, sizeof cdev) < 0) r->err = ENOENT;
    else {
      snprintf(path, sizeof path, "/dev/vfio/devices/%s", cdev);
      fd = open(path, O_RDWR);
      r->err = fd < 0 ? errno : 0;
    }
    if (fd >= 0) {
      int i = add_name(argv[1], K_DEVFD);
      names[i].fd = fd;
      snprintf(names[i].dev, sizeof names[i].dev, "%s", bdf);
    }
    snprintf(extra, elen, "\"device\":\"%s\",\"cdev\":\"%s\"", bdf, cdev);
  } else if (strcmp(op, "getinfo") == 0) { /* getinfo FD */
    struct vfio_device_info info = {.argsz = sizeof info};
    r->err = ioctl(fd_of(argv[1]), VFIO_DEVICE_GET_INFO, &info) ? errno : 0;
  } else if (strcmp(op, "bind_iommufd") == 0) { /* bind_iommufd FD ICTX|@neg|@closed|@devnull [flags=] [argsz=] */
    long long v;
    struct vfio_device_bind_iommufd b = {.argsz = sizeof b};
    int tmp = -1;
    if (strcmp(argv[2], "@neg") == 0) b.iommufd = -1;
    else if (strcmp(argv[2], "@closed") == 0) b.iommufd = 999;
    else if (strcmp(argv[2], "@devnull") == 0) b.iommufd = tmp = open("/dev/null", O_RDWR);
    else b.iommufd = fd_of(argv[2]);
    if (opt_num(argc, argv, "flags", &v)) b.flags = (unsigned)v;
    if (opt_num(argc, argv, "argsz", &v)) b.argsz = (unsigned)v;
    r->err = ioctl(fd_of(argv[1]), VFIO_DEVICE_BIND_IOMMUFD, &b) ? errno : 0;
    if (tmp >= 0) close(tmp);
    if (!r->err) {
      snprintf(r->out, sizeof r->out, "\"devId\":%u", b.out_devid);
      bind_out(out, b.out_devid);
    }
  } else if (strcmp(op, "attach") == 0) { /* attach FD PT [flags=] [argsz=] */
    long long v;
    struct vfio_device_attach_iommufd_pt a = {.argsz = sizeof a, .pt_id = id_of(argv[2])};
    if (opt_num(argc, argv, "flags", &v)) a.flags = (unsigned)v;
    if (opt_num(argc, argv, "argsz", &v)) a.argsz = (unsigned)v;
    snprintf(extra, elen, "\"inPtId\":%u", a.pt_id);
    r->err = ioctl(fd_of(argv[1]), VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) ? errno : 0;
    if (!r->err) {
      snprintf(r->out, sizeof r->out, "\"ptId\":%u", a.pt_id);
      bind_out(out, a.pt_id);
    }
  } else if (strcmp(op, "detach") == 0) { /* detach FD [flags=] [argsz=] */
    long long v;
    struct vfio_device_detach_iommufd_pt d = {.argsz = sizeof d};
    if (opt_num(argc, argv, "flags", &v)) d.flags = (unsigned)v;
    if (opt_num(argc, argv, "argsz", &v)) d.argsz = (unsigned)v;
    r->err = ioctl(fd_of(argv[1]), VFIO_DEVICE_DETACH_IOMMUFD_PT, &d) ? errno : 0;
  } else if (strcmp(op, "close") == 0) { /* close NAME */
    int i = find(argv[1]);
    if (i < 0) r->err = EBADF;
    else {
      r->err = close(names[i].fd) ? errno : 0;
      /* a fault queue's object outlives its fd (IOMMU_DESTROY of it works once the fd is closed): the name keeps the id */
      names[i].kind = names[i].kind == K_FAULT ? K_ID : K_NONE;
    }
  } else if (strcmp(op, "ioas") == 0) { /* ioas ICTX */
    struct iommu_ioas_alloc a = {.size = sizeof a};
    r->err = ioctl(fd_of(argv[1]), IOMMU_IOAS_ALLOC, &a) ? errno : 0;
    if (!r->err) {
      snprintf(r->out, sizeof r->out, "\"ioasId\":%u", a.out_ioas_id);
      bind_out(out, a.out_ioas_id);
    }
  } else if (strcmp(op, "hwpt") == 0) { /* hwpt ICTX DEVID PT [flags=] [data=selftest|vtd] [fault=FAULT] */
    long long v;
    struct iommu_hwpt_selftest st = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
    struct iommu_hwpt_vtd_s1 vtd = {0};
    struct iommu_hwpt_alloc a = {.size = sizeof a, .dev_id = id_of(argv[2]), .pt_id = id_of(argv[3])};
    if (opt_num(argc, argv, "flags", &v)) a.flags = (unsigned)v;
    a.data_type = data_type_of(argc, argv, IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_DATA_VTD_S1);
    if (a.data_type == IOMMU_HWPT_DATA_SELFTEST) {
      a.data_len = sizeof st;
      a.data_uptr = (uintptr_t)&st;
    } else if (a.data_type == IOMMU_HWPT_DATA_VTD_S1) {
      a.data_len = sizeof vtd;
      a.data_uptr = (uintptr_t)&vtd;
    }
    const char *fault = opt_str(argc, argv, "fault");
    if (fault) a.fault_id = id_of(fault);
    snprintf(extra, elen, "\"devId\":%u,\"ptId\":%u,\"flags\":%u,\"dataType\":%u,\"faultId\":%u", a.dev_id, a.pt_id, a.flags, a.data_type, a.fault_id);
    r->err = ioctl(fd_of(argv[1]), IOMMU_HWPT_ALLOC, &a) ? errno : 0;
    if (!r->err) {
      snprintf(r->out, sizeof r->out, "\"hwptId\":%u", a.out_hwpt_id);
      bind_out(out, a.out_hwpt_id);
    }
  } else if (strcmp(op, "mock") == 0) { /* mock ICTX PT [flags=] -> NAME: IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS), a mock device bound and attached to PT */
    long long v = 0;
    int flags = opt_num(argc, argv, "flags", &v);
    struct iommu_test_cmd c = {.size = sizeof c, .op = flags ? IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS : IOMMU_TEST_OP_MOCK_DOMAIN, .id = id_of(argv[2])};
    c.mock_domain_flags.dev_flags = (unsigned)v;
    snprintf(extra, elen, "\"ptId\":%u,\"devFlags\":%u", c.id, (unsigned)v);
    r->err = ioctl(fd_of(argv[1]), IOMMU_TEST_CMD, &c) ? errno : 0;
    if (!r->err) {
      snprintf(r->out, sizeof r->out, "\"stdevId\":%u,\"hwptId\":%u,\"devId\":%u", c.mock_domain_flags.out_stdev_id, c.mock_domain_flags.out_hwpt_id, c.mock_domain_flags.out_idev_id);
      if (out) {
        char n[48];
        bind_out(out, c.mock_domain_flags.out_idev_id);
        snprintf(n, sizeof n, "%s.hwpt", out);
        bind_out(n, c.mock_domain_flags.out_hwpt_id);
        snprintf(n, sizeof n, "%s.stdev", out);
        bind_out(n, c.mock_domain_flags.out_stdev_id);
      }
    }
  } else if (strcmp(op, "hw_info") == 0) { /* hw_info ICTX DEVID [flags=] */
    long long v;
    unsigned char data[256];
    struct iommu_hw_info h = {.size = sizeof h, .dev_id = id_of(argv[2]), .data_len = sizeof data, .data_uptr = (uintptr_t)data};
    if (opt_num(argc, argv, "flags", &v)) h.flags = (unsigned)v;
    snprintf(extra, elen, "\"devId\":%u", h.dev_id);
    r->err = ioctl(fd_of(argv[1]), IOMMU_GET_HW_INFO, &h) ? errno : 0;
    if (!r->err)
      snprintf(r->out, sizeof r->out, "\"type\":%u,\"capabilities\":%llu,\"maxPasidLog2\":%u,\"dataLen\":%u", h.out_data_type, (unsigned long long)h.out_capabilities,
               h.out_max_pasid_log2, h.data_len);
  } else if (strcmp(op, "invalidate") == 0) { /* invalidate ICTX HWPT [data=selftest|vtd] [num=] [len=] [uptr=0] */
    long long v;
    static unsigned char entries[8][64];
    struct iommu_hwpt_invalidate c = {.size = sizeof c, .hwpt_id = id_of(argv[2]), .data_uptr = (uintptr_t)entries};
    memset(entries, 0, sizeof entries);
    c.data_type = data_type_of(argc, argv, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1);
    c.entry_len = c.data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST ? sizeof(struct iommu_hwpt_invalidate_selftest) : sizeof(struct iommu_hwpt_vtd_s1_invalidate);
    c.entry_num = 1;
    if (opt_num(argc, argv, "num", &v)) c.entry_num = (unsigned)v;
    if (opt_num(argc, argv, "len", &v)) c.entry_len = (unsigned)v;
    if (opt_num(argc, argv, "uptr", &v) && v == 0) c.data_uptr = 0;
    /* selftest entries: IOMMU_TEST_INVALIDATE_FLAG_ALL, so any iotlb_id is valid */
    for (int i = 0; i < 8 && c.data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST; i++) ((struct iommu_hwpt_invalidate_selftest *)entries[i])->flags = 1;
    snprintf(extra, elen, "\"hwptId\":%u,\"dataType\":%u,\"entryLen\":%u,\"entryNum\":%u", c.hwpt_id, c.data_type, c.entry_len, c.entry_num);
    r->err = ioctl(fd_of(argv[1]), IOMMU_HWPT_INVALIDATE, &c) ? errno : 0;
    /* the kernel writes back the entries it handled, also on failure */
    snprintf(r->out, sizeof r->out, "\"handled\":%u", c.entry_num);
  } else if (strcmp(op, "dirty") == 0) { /* dirty ICTX HWPT on|off [flags=] */
    long long v;
    struct iommu_hwpt_set_dirty_tracking c = {.size = sizeof c, .hwpt_id = id_of(argv[2]), .flags = strcmp(argv[3], "on") == 0 ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0};
    if (opt_num(argc, argv, "flags", &v)) c.flags = (unsigned)v;
    snprintf(extra, elen, "\"hwptId\":%u,\"dirtyFlags\":%u", c.hwpt_id, c.flags);
    r->err = ioctl(fd_of(argv[1]), IOMMU_HWPT_SET_DIRTY_TRACKING, &c) ? errno : 0;
  } else if (strcmp(op, "dirty_bitmap") == 0) { /* dirty_bitmap ICTX HWPT IOVA LEN [flags=] [pgsize=] */
    long long v;
    static unsigned long long bitmap[512];
    struct iommu_hwpt_get_dirty_bitmap c = {.size = sizeof c, .hwpt_id = id_of(argv[2]), .iova = strtoull(argv[3], NULL, 0), .length = strtoull(argv[4], NULL, 0),
                                            .page_size = 4096, .data = (uintptr_t)bitmap};
    if (opt_num(argc, argv, "flags", &v)) c.flags = (unsigned)v;
    if (opt_num(argc, argv, "pgsize", &v)) c.page_size = (unsigned long long)v;
    snprintf(extra, elen, "\"hwptId\":%u,\"dirtyFlags\":%u,\"pageSize\":%llu", c.hwpt_id, c.flags, (unsigned long long)c.page_size);
    r->err = ioctl(fd_of(argv[1]), IOMMU_HWPT_GET_DIRTY_BITMAP, &c) ? errno : 0;
  } else if (strcmp(op, "fault_queue") == 0) { /* fault_queue ICTX [flags=] -> NAME: the fault object's id and its fd */
    long long v;
    struct iommu_fault_alloc c = {.size = sizeof c};
    if (opt_num(argc, argv, "flags", &v)) c.flags = (unsigned)v;
    snprintf(extra, elen, "\"faultFlags\":%u", c.flags);
    r->err = ioctl(fd_of(argv[1]), IOMMU_FAULT_QUEUE_ALLOC, &c) ? errno : 0;
    if (!r->err) {
      char link[64], target[128] = "";
      snprintf(link, sizeof link, "/proc/self/fd/%u", c.out_fault_fd);
      ssize_t n = readlink(link, target, sizeof target - 1);
      target[n < 0 ? 0 : n] = 0;
      snprintf(r->out, sizeof r->out, "\"faultId\":%u,\"faultFdFile\":\"%s\"", c.out_fault_id, target);
      if (out) {
        int i = add_name(out, K_FAULT);
        names[i].fd = (int)c.out_fault_fd;
        names[i].id = c.out_fault_id;
      } else close((int)c.out_fault_fd);
    }
  } else if (strcmp(op, "destroy") == 0) { /* destroy ICTX OBJ */
    struct iommu_destroy d = {.size = sizeof d, .id = id_of(argv[2])};
    snprintf(extra, elen, "\"objectId\":%u", d.id);
    r->err = ioctl(fd_of(argv[1]), IOMMU_DESTROY, &d) ? errno : 0;
  } else if (strcmp(op, "map") == 0 || strcmp(op, "unmap") == 0) {
    snprintf(extra, elen, "\"ioasId\":%u", id_of(argv[2]));
    do_map(op[0] == 'u', argv, r);
  } else if (strcmp(op, "group") == 0) { /* group GFD DEV */
    const char *bdf = resolve(argv[2]);
    int g = group_of(bdf);
    snprintf(path, sizeof path, "/dev/vfio/%d", g);
    int fd = open(path, O_RDWR);
    r->err = fd < 0 ? errno : 0;
    if (fd >= 0) {
      int i = add_name(argv[1], K_GROUP);
      names[i].fd = fd;
      names[i].group = g;
    }
    snprintf(extra, elen, "\"group\":%d", g);
  } else if (strcmp(op, "status") == 0) { /* status GFD */
    struct vfio_group_status s = {.argsz = sizeof s};
    r->err = ioctl(fd_of(argv[1]), VFIO_GROUP_GET_STATUS, &s) ? errno : 0;
    if (!r->err)
      snprintf(r->out, sizeof r->out, "\"viable\":%s,\"containerSet\":%s", s.flags & VFIO_GROUP_FLAGS_VIABLE ? "true" : "false",
               s.flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? "true" : "false");
  } else if (strcmp(op, "set_container") == 0) { /* set_container GFD CONT */
    int cfd = fd_of(argv[2]);
    r->err = ioctl(fd_of(argv[1]), VFIO_GROUP_SET_CONTAINER, &cfd) ? errno : 0;
  } else if (strcmp(op, "unset_container") == 0) {
    r->err = ioctl(fd_of(argv[1]), VFIO_GROUP_UNSET_CONTAINER) ? errno : 0;
  } else if (strcmp(op, "get_device_fd") == 0) { /* get_device_fd GFD DEV -> FD */
    const char *bdf = resolve(argv[2]);
    int fd = ioctl(fd_of(argv[1]), VFIO_GROUP_GET_DEVICE_FD, bdf);
    r->err = fd < 0 ? errno : 0;
    if (fd >= 0 && out) {
      int i = add_name(out, K_DEVFD);
      names[i].fd = fd;
      snprintf(names[i].dev, sizeof names[i].dev, "%s", bdf);
    }
    snprintf(extra, elen, "\"device\":\"%s\"", bdf);
  } else if (strcmp(op, "container") == 0) { /* container NAME */
    int fd = open("/dev/vfio/vfio", O_RDWR);
    r->err = fd < 0 ? errno : 0;
    if (fd >= 0) names[add_name(argv[1], K_CONTAINER)].fd = fd;
  } else if (strcmp(op, "set_iommu") == 0) { /* set_iommu CONT type1|type1v2 */
    long type = strcmp(argv[2], "type1") == 0 ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU;
    r->err = ioctl(fd_of(argv[1]), VFIO_SET_IOMMU, type) ? errno : 0;
  } else {
    r->err = ENOSYS;
    snprintf(extra, elen, "\"unknownOp\":true");
  }
  /* the context, taken before the step ran (a close forgets the name) */
  size_t used = strlen(extra);
  if (ctx[0] && used + strlen(ctx) + 2 < elen) snprintf(extra + used, elen - used, "%s%s", used ? "," : "", ctx);
}

/* ---- the scenario loop -------------------------------------------------------------------------- */

static void restore_drivers(void) {
  for (int i = 0; i < nnames; i++)
    if (names[i].kind != K_NONE && names[i].kind != K_ID) close(names[i].fd);
  nnames = 0;
  for (int i = 0; i < roles; i++) {
    char drv[64] = "", path[256];
    int has = driver_of(role_bdf[i], drv, sizeof drv) == 0;
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", role_bdf[i]);
    write_text(path, "\n");
    if (has && strcmp(drv, boot_driver[i]) == 0) continue;
    if (has) {
      snprintf(path, sizeof path, "/sys/bus/pci/drivers/%s/unbind", drv);
      write_text(path, role_bdf[i]);
    }
    if (boot_driver[i][0]) write_text("/sys/bus/pci/drivers_probe", role_bdf[i]);
  }
}

static void run_scenario(const char *name) {
  char path[256], line[LINE];
  snprintf(path, sizeof path, "/scenarios/%s.scn", name);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(rec, "{\"t\":\"error\",\"scenario\":");
    jstr(name);
    fprintf(rec, ",\"message\":\"no scenario file\"}\n");
    return;
  }
  restore_drivers();
  snapshot(name);
  int lineno = 0, ops = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *argv[16], *out = NULL;
    int argc = 0, mistake = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '#' || *s == '\n' || *s == 0) continue;
    /* a trailing comment (`# raises RULE`: what the step must raise) is the host's, not a step argument */
    char *hash = strchr(s, '#');
    if (hash) *hash = 0;
    if (*s == '!') {
      mistake = 1;
      s++;
    }
    for (char *tok = strtok(s, " \t\n"); tok && argc < 15; tok = strtok(NULL, " \t\n")) {
      if (strcmp(tok, "->") == 0) {
        out = strtok(NULL, " \t\n");
        break;
      }
      argv[argc++] = tok;
    }
    if (argc == 0) continue;
    argv[argc] = NULL;
    struct result r;
    char extra[512];
    step(argc, argv, out, &r, extra, sizeof extra);
    record(lineno, mistake, argc, argv, out, &r, extra);
    /* a hot-unplug or rescan changes the PCI tree: the sysfs files the collector snapshots on its add/remove uevent */
    if (strcmp(argv[0], "remove") == 0 || strcmp(argv[0], "rescan") == 0) dump_sysfs();
    ops++;
  }
  fclose(f);
  fprintf(rec, "{\"t\":\"end\",\"scenario\":");
  jstr(name);
  fprintf(rec, ",\"ops\":%d}\n", ops);
  fflush(rec);
}

int main(int argc, char **argv) {
  rec = argc > 1 ? fopen(argv[1], "w") : stdout;
  if (!rec) rec = stdout;
  dma_buf = mmap(NULL, DMA_BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(dma_buf, 0, DMA_BUF_LEN);
  char *env = getenv("ITROLES");
  if (env) {
    char *copy = strdup(env);
    for (char *tok = strtok(copy, ","); tok && roles < MAX_DEVS; tok = strtok(NULL, ",")) {
      char *eq = strchr(tok, '=');
      if (!eq) continue;
      *eq = 0;
      snprintf(role_name[roles], sizeof role_name[roles], "%s", tok);
      snprintf(role_bdf[roles], sizeof role_bdf[roles], "%s", eq + 1);
      if (driver_of(role_bdf[roles], boot_driver[roles], sizeof boot_driver[roles]) < 0) boot_driver[roles][0] = 0;
      roles++;
    }
  }
  int w = open("/sys/kernel/tracing/trace", O_WRONLY | O_TRUNC);
  if (w >= 0) close(w);
  open_signals();
  char *list = getenv("ITSCEN");
  if (list) {
    char *copy = strdup(list);
    char *save;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) run_scenario(tok);
  }
  drain_signals();
  fprintf(rec, "{\"t\":\"done\"}\n");
  fflush(rec);
  return 0;
}
