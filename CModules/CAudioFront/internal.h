/* Helpers shared by the front's C files; not part of the public header. */
#ifndef PARLEY_AUDIO_FRONT_INTERNAL_H
#define PARLEY_AUDIO_FRONT_INTERNAL_H

#include "audio_front.h"

/* Fills *err (when err is not NULL) with a printf-style one-line message. */
void pa_set_error(pa_error *err, int code, int library_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Spool access for the decoder's virtual I/O. */
int64_t pa_spool_wait_length(pa_spool *spool, int *finished, int *aborted);
long pa_spool_read_at(pa_spool *spool, int64_t offset, void *out, size_t count, int *aborted);
int64_t pa_spool_expected_length(pa_spool *spool);
/* Returns 1 if the stream is finished or aborted, saying which. */
int pa_spool_is_closed(pa_spool *spool, int *finished, int *aborted);

/* The FFmpeg side of the decoder (ffmpeg.c). Opens a path, or a spool (then
 * `notice` is told when decoding must wait for the end of the upload). On
 * failure returns NULL with a pa_status in *code and FFmpeg's words in why. */
typedef struct pa_av pa_av;
pa_av *pa_av_open(const char *path, pa_spool *spool, pa_notice_fn notice, void *context, int *code, char *why,
                  size_t why_size);
/* The source's rate, channels and declared frames (-1 unknown); the frames are the
 * audio stream's own length (1), or the container's (0: a video's may be longer). */
void pa_av_describe(const pa_av *av, int *rate, int *channels, int64_t *frames, int *frames_are_the_streams,
                    char *name, size_t name_size);
/* The next decoded samples as mono float at the source rate in *mono (grown
 * as needed, *capacity samples); 0 at the end, -1 with *err filled. */
long pa_av_read(pa_av *av, float **mono, size_t *capacity, int64_t frames_so_far, pa_error *err);
void pa_av_free(pa_av *av);

#endif
