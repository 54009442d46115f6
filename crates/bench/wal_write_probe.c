/*
 * What a WAL commit's writes cost in kernel CPU on this disk, by the way they are made:
 *   split: SQLite's own pattern, a 24-byte frame header and then the page, per frame;
 *   one:   all the commit's frames in one pwrite (what crates/store/sqlite/wal_writes.c does);
 *   frame: one pwrite per frame.
 * Each round writes FRAMES frames of 24 + 2048 bytes after the last round's, then fdatasyncs,
 * in a 16 MiB file that is filled first (so no round grows it). Prints process CPU time per
 * round and the fdatasync's share, twice per pattern. BENCHMARKS.md, eighth session.
 *
 * Usage: gcc -O2 -o /tmp/wal_write_probe crates/bench/wal_write_probe.c
 *        taskset -c 0 /tmp/wal_write_probe [FRAMES (23)] [FILE (./wal_write_probe.bin)]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEADER 24
#define PAGE 2048
#define FRAME (HEADER + PAGE)
#define FILE_SIZE (16 << 20)
#define ROUNDS 3000

static double cpu_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void must(int ok, const char *what) {
  if (!ok) {
    perror(what);
    exit(1);
  }
}

int main(int argc, char **argv) {
  int frames = argc > 1 ? atoi(argv[1]) : 23;
  const char *path = argc > 2 ? argv[2] : "wal_write_probe.bin";
  static const char *names[] = {"split", "one", "frame"};
  must(frames > 0 && frames * FRAME <= FILE_SIZE, "FRAMES");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  must(fd >= 0, "open");
  char *zeros = calloc(1, FILE_SIZE);
  char *commit = malloc((size_t)frames * FRAME);
  must(zeros != NULL && commit != NULL, "malloc");
  must(pwrite(fd, zeros, FILE_SIZE, 0) == FILE_SIZE && fsync(fd) == 0, "fill");
  for (int i = 0; i < frames; i++) {
    memset(commit + (size_t)i * FRAME, 'h', HEADER);
    memset(commit + (size_t)i * FRAME + HEADER, 'p', PAGE);
  }
  for (int pass = 0; pass < 6; pass++) {
    int mode = pass % 3;
    off_t offset = 0;
    double start = cpu_us(), in_sync = 0;
    for (int round = 0; round < ROUNDS; round++) {
      if (offset + (off_t)frames * FRAME > FILE_SIZE) offset = 0;
      if (mode == 1) {
        must(pwrite(fd, commit, (size_t)frames * FRAME, offset) == frames * FRAME, "pwrite");
      } else {
        for (int i = 0; i < frames; i++) {
          const char *f = commit + (size_t)i * FRAME;
          off_t at = offset + (off_t)i * FRAME;
          if (mode == 0) {
            must(pwrite(fd, f, HEADER, at) == HEADER, "pwrite");
            must(pwrite(fd, f + HEADER, PAGE, at + HEADER) == PAGE, "pwrite");
          } else {
            must(pwrite(fd, f, FRAME, at) == FRAME, "pwrite");
          }
        }
      }
      offset += (off_t)frames * FRAME;
      double before = cpu_us();
      must(fdatasync(fd) == 0, "fdatasync");
      in_sync += cpu_us() - before;
    }
    printf("%-5s %d frames: %.1f us of CPU per round (fdatasync %.1f)\n", names[mode], frames,
           (cpu_us() - start) / ROUNDS, in_sync / ROUNDS);
  }
  close(fd);
  unlink(path);
  return 0;
}
