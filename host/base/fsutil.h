/*
 * Durable file operations for recordings: a file that looks complete is
 * complete. Writers write a temporary name, fsync it, rename it over the
 * final name and fsync the folder; a crash at any point leaves either the
 * old state or the new one, plus at most a temporary file that is never
 * mistaken for a result (its name ends in ".tmp").
 *
 * Every function returns 0, or -1 with errno set (and nothing half done
 * left under the final name).
 */
#ifndef VOXRAY_FSUTIL_H
#define VOXRAY_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with `mode` for the folders it creates; existing ones are fine. */
int fs_mkdirs(const char *path, mode_t mode);
/* fsync the folder holding (or named by) path, so a rename in it is durable. */
int fs_sync_dir(const char *dir);
/* Write len bytes to dir/name atomically (temporary + fsync + rename +
 * fsync of dir). */
int fs_write_atomic(const char *dir, const char *name, const void *buf, size_t len);
/* Make the temporary `tmp` (open as fd, fully written) the file `dst` in
 * folder `dir`: fsync, close, rename, fsync the folder. fd is closed and, on
 * failure, tmp removed (dst untouched), in every case. */
int fs_commit(int fd, const char *tmp, const char *dst, const char *dir);
/* Move a file to another folder, durably: rename() when both are on one
 * file system, else copy to a temporary in the destination, fsync, rename,
 * then unlink the source. The destination name is dst_dir/basename(src). */
int fs_move(const char *src, const char *dst_dir);
/* Write all of buf at offset (pwrite loop over short writes and EINTR). */
int fs_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Remove files ending in ".tmp" in dir (leftovers of a crash). Returns how
 * many were removed. */
int fs_remove_temporaries(const char *dir);

#endif
