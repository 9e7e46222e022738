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

#endif
