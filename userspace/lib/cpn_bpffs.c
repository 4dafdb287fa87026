// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The BPF file system under a pin directory: is it there, and mounting it
 * where it is not, as bpftool does for its pin paths.
 *
 * `ip netns exec` gives each command a mount namespace of its own and
 * remounts /sys there, so /sys/fs/bpf is an empty directory on a fresh sysfs.
 * A bpffs mounted there is private to that command and vanishes with it,
 * pins and all: cpn_bpffs_prepare() says so, and names the command that
 * keeps the host's /sys/fs/bpf in view (nsenter --net).
 */
#include <errno.h>
#include <libgen.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "cpn_maps.h"

#define CPN_BPFFS_ROOT "/sys/fs/bpf"

bool cpn_on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == (typeof(st.f_type))BPF_FS_MAGIC;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* Is this process in a mount namespace of its own? 1 yes, 0 no, -1 cannot
 * tell. Where init's namespace cannot be read (a container), /sys mounted
 * with the source `ip netns exec` gives it (the namespace's name, not
 * "sysfs") still tells the common case.
 */
static int private_mount_ns(void)
{
	struct stat self, init;
	char line[512], src[128], type[32];
	int yes = -1;
	FILE *f;

	if (!stat("/proc/self/ns/mnt", &self) && !stat("/proc/1/ns/mnt", &init))
		return self.st_ino != init.st_ino || self.st_dev != init.st_dev;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (!strstr(line, " /sys ") || !sep || sscanf(sep, " - %31s %127s", type, src) != 2)
			continue;
		if (!strcmp(type, "sysfs") && strcmp(src, "sysfs"))
			yes = 1;
	}
	fclose(f);
	return yes;
}

#define CPN_NS_ADVICE                                                                              \
	"`ip netns exec` makes a mount namespace per command and remounts /sys, hiding the "       \
	"host's /sys/fs/bpf: run cpnctl under `nsenter --net=/run/netns/NAME` instead"

const char *cpn_bpffs_hint(const char *pin_dir)
{
	static char hint[512];
	char tmp[256], *dir;

	snprintf(tmp, sizeof(tmp), "%s", pin_dir);
	dir = dirname(tmp);
	if (cpn_on_bpffs(pin_dir) || cpn_on_bpffs(dir))
		return "";
	if (strcmp(dir, CPN_BPFFS_ROOT))
		snprintf(hint, sizeof(hint), "; %s is not on bpffs", dir);
	else if (private_mount_ns() == 1)
		snprintf(hint, sizeof(hint),
			 "; bpffs is not mounted at %s in this command's own mount "
			 "namespace: " CPN_NS_ADVICE,
			 dir);
	else
		snprintf(hint, sizeof(hint),
			 "; bpffs is not mounted at %s (mount -t bpf bpf %s; or, if this runs "
			 "under `ip netns exec`: " CPN_NS_ADVICE ")",
			 dir, dir);
	return hint;
}

int cpn_bpffs_prepare(const char *pin_dir, char *note, size_t len)
{
	char tmp[256], *dir;
	int err;

	note[0] = 0;
	if (strlen(pin_dir) >= sizeof(tmp)) {
		snprintf(note, len, "pin directory %s: name too long", pin_dir);
		return -ENAMETOOLONG;
	}
	if (cpn_on_bpffs(pin_dir))
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", pin_dir);
	dir = dirname(tmp);
	if (cpn_on_bpffs(dir))
		return 0;
	/* Mount only where nothing can be hidden: the usual place, or an empty
	 * directory. Over anything else that would cover what lives there.
	 */
	if (strcmp(dir, CPN_BPFFS_ROOT) && !dir_empty(dir)) {
		snprintf(note, len,
			 "%s is not on bpffs and is not empty: mount bpffs there yourself "
			 "(mount -t bpf bpf DIR) or choose a --pin-dir on bpffs",
			 dir);
		return -ENOTDIR;
	}
	if (mount("bpf", dir, "bpf", 0, "mode=0700")) {
		err = -errno;
		snprintf(note, len, "%s is not on bpffs and mounting bpffs there failed: %s", dir,
			 strerror(errno));
		return err;
	}
	switch (private_mount_ns()) {
	case 1:
		snprintf(note, len,
			 "mounted bpffs at %s; this command runs in a mount namespace of its "
			 "own, so the mount and the pins under %s vanish when it ends (the XDP "
			 "program stays attached without them). " CPN_NS_ADVICE,
			 dir, pin_dir);
		break;
	case 0:
		snprintf(note, len, "mounted bpffs at %s", dir);
		break;
	default:
		snprintf(note, len,
			 "mounted bpffs at %s; if this command runs in a mount namespace of its "
			 "own, the pins under %s vanish when it ends. " CPN_NS_ADVICE,
			 dir, pin_dir);
	}
	return 0;
}
