// Linux calls the Swift Glibc module does not import. Declared here without system headers (and
// without _GNU_SOURCE), so that no type clashes with the Glibc module's own definitions.
#ifndef SWALLOW_CSYSTEM_H
#define SWALLOW_CSYSTEM_H

struct swallow_iovec { void *base; unsigned long length; };  // layout of struct iovec
extern long preadv2(int fd, const struct swallow_iovec *iov, int iovcnt, long offset, int flags);

/// pread that never waits for the disk: -1 with errno EAGAIN when the data is not in the page cache
/// (preadv2 with RWF_NOWAIT = 0x8, Linux 4.14+); -1 with EOPNOTSUPP/EINVAL where unsupported.
static inline long swallow_pread_nowait(int fd, void *buf, unsigned long count, long offset) {
    struct swallow_iovec v = { buf, count };
    return preadv2(fd, &v, 1, offset, 0x8);
}
#endif
