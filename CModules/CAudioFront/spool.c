/* A byte stream that arrives in chunks, kept in a file so memory stays bounded,
 * and readable from another thread while it is still being written. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct pa_spool {
    int fd;
    char *path;  /* NULL for an anonymous file (already unlinked) */
    int64_t written;
    int64_t expected;
    int finished;
    int aborted;
    pthread_mutex_t lock;
    pthread_cond_t grew;
};

pa_spool *pa_spool_new(const char *path, int64_t expected_length, pa_error *err) {
    pa_spool *spool = calloc(1, sizeof *spool);
    if (spool == NULL) {
        pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory allocating a spool");
        return NULL;
    }
    if (path != NULL) {
        spool->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (spool->fd >= 0) spool->path = strdup(path);
    } else {
        const char *dir = getenv("TMPDIR");
        char template[4096];
        snprintf(template, sizeof template, "%s/parley-spool-XXXXXX", dir && *dir ? dir : "/tmp");
        spool->fd = mkostemp(template, O_CLOEXEC);
        if (spool->fd >= 0) unlink(template);
    }
    if (spool->fd < 0) {
        int e = errno;
        pa_set_error(err, PA_ERR_IO, e, "cannot create spool file%s%s: %s", path ? " " : "", path ? path : "",
                     strerror(e));
        free(spool);
        return NULL;
    }
    spool->expected = expected_length;
    pthread_mutex_init(&spool->lock, NULL);
    pthread_cond_init(&spool->grew, NULL);
    return spool;
}

int pa_spool_append(pa_spool *spool, const void *bytes, size_t n, pa_error *err) {
    pthread_mutex_lock(&spool->lock);
    int64_t at = spool->written;
    int finished = spool->finished, aborted = spool->aborted;
    pthread_mutex_unlock(&spool->lock);
    if (aborted) {
        pa_set_error(err, PA_ERR_ABORTED, 0, "append to a spool that was aborted");
        return -1;
    }
    if (finished) {
        pa_set_error(err, PA_ERR_CONFIG, 0, "append to a spool that was already finished");
        return -1;
    }
    const char *p = bytes;
    size_t left = n;
    while (left > 0) {
        ssize_t w = pwrite(spool->fd, p, left, at);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            pa_set_error(err, PA_ERR_IO, e, "cannot write to spool: %s", strerror(e));
            return -1;
        }
        p += w;
        at += w;
        left -= (size_t)w;
    }
    pthread_mutex_lock(&spool->lock);
    spool->written = at;
    pthread_cond_broadcast(&spool->grew);
    pthread_mutex_unlock(&spool->lock);
    return 0;
}

void pa_spool_finish(pa_spool *spool) {
    pthread_mutex_lock(&spool->lock);
    spool->finished = 1;
    pthread_cond_broadcast(&spool->grew);
    pthread_mutex_unlock(&spool->lock);
}

void pa_spool_abort(pa_spool *spool) {
    pthread_mutex_lock(&spool->lock);
    spool->aborted = 1;
    pthread_cond_broadcast(&spool->grew);
    pthread_mutex_unlock(&spool->lock);
}

int64_t pa_spool_length(pa_spool *spool) {
    pthread_mutex_lock(&spool->lock);
    int64_t n = spool->written;
    pthread_mutex_unlock(&spool->lock);
    return n;
}

int64_t pa_spool_expected_length(pa_spool *spool) { return spool->expected; }

int pa_spool_is_closed(pa_spool *spool, int *finished, int *aborted) {
    pthread_mutex_lock(&spool->lock);
    *finished = spool->finished;
    *aborted = spool->aborted;
    pthread_mutex_unlock(&spool->lock);
    return *finished || *aborted;
}

/* Waits until the stream is finished or aborted and returns its length. */
int64_t pa_spool_wait_length(pa_spool *spool, int *finished, int *aborted) {
    pthread_mutex_lock(&spool->lock);
    while (!spool->finished && !spool->aborted) pthread_cond_wait(&spool->grew, &spool->lock);
    int64_t n = spool->written;
    *finished = spool->finished;
    *aborted = spool->aborted;
    pthread_mutex_unlock(&spool->lock);
    return n;
}

/* Reads count bytes at offset, waiting for them to arrive; fewer only at the
 * end of a finished stream. Returns -1 (and *aborted = 1) if aborted. */
long pa_spool_read_at(pa_spool *spool, int64_t offset, void *out, size_t count, int *aborted) {
    pthread_mutex_lock(&spool->lock);
    while (!spool->aborted && !spool->finished && spool->written < offset + (int64_t)count)
        pthread_cond_wait(&spool->grew, &spool->lock);
    int64_t available = spool->written - offset;
    *aborted = spool->aborted;
    pthread_mutex_unlock(&spool->lock);
    if (*aborted) return -1;
    if (available <= 0) return 0;
    size_t want = (int64_t)count < available ? count : (size_t)available;
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(spool->fd, (char *)out + got, want - got, offset + (int64_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

void pa_spool_free(pa_spool *spool) {
    if (spool == NULL) return;
    close(spool->fd);
    free(spool->path);
    pthread_mutex_destroy(&spool->lock);
    pthread_cond_destroy(&spool->grew);
    free(spool);
}
