/* Decoding with libsndfile (from a path or a spool through virtual I/O), or
 * with FFmpeg (ffmpeg.c) for what libsndfile does not read; downmix to mono,
 * and band-limited resampling with libswresample. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

enum { BLOCK_FRAMES = 4096, MAX_CHANNELS = 64, MAX_RATE = 768000, MIN_RATE = 1000 };

/* libsndfile reports open failures through a process-global (sf_strerror(NULL)): a file is
 * opened and its failure read under this lock. A byte stream is opened outside it, since its
 * open may wait for bytes that have not arrived (a client that stalls would stop every other
 * open); only its failure is read under the lock, and if another open failed at the same
 * moment the reason shown may be that one's. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

struct pa_decoder {
    SNDFILE *file;         /* libsndfile decodes, or */
    pa_av *av;             /* FFmpeg does */
    SF_INFO info;          /* the source's rate, channels and declared frames, from either */
    pa_spool *spool;       /* borrowed, or NULL */
    int64_t position;      /* virtual I/O read position */
    int target_rate;
    int allow_truncated;
    int declared_short;    /* the header declares more data than the file holds */
    int64_t frames_read;   /* source frames decoded so far */
    SwrContext *resampler; /* NULL when the rates match */
    float *staged;         /* resampled samples not yet handed out */
    size_t staged_capacity;
    long staged_pos, staged_len;
    float *interleaved;    /* BLOCK_FRAMES * channels */
    float *mono;           /* mono_capacity samples: BLOCK_FRAMES, or FFmpeg's largest frame */
    size_t mono_capacity;
    int av_length_is_the_streams; /* the declared frames are the audio stream's own, not a video's */
    long mono_pos, mono_len;
    int source_done, flushed;
    char format_name[96];
};

/* ---- virtual I/O over a spool ---- */

/* While bytes are still arriving and no length was announced, report a length
 * larger than any real file, so that libsndfile trusts the header's own data
 * size instead of clamping it to what has arrived so far. */
enum { UNKNOWN_LENGTH = 1LL << 40 };

static sf_count_t vio_filelen(void *user) {
    pa_decoder *d = user;
    int64_t expected = pa_spool_expected_length(d->spool);
    if (expected >= 0) return expected;
    int finished = 0, aborted = 0;
    return pa_spool_is_closed(d->spool, &finished, &aborted) ? pa_spool_length(d->spool) : UNKNOWN_LENGTH;
}

static sf_count_t wait_for_length(pa_decoder *d) {
    int64_t expected = pa_spool_expected_length(d->spool);
    if (expected >= 0) return expected;
    int finished = 0, aborted = 0;
    return pa_spool_wait_length(d->spool, &finished, &aborted);
}

static sf_count_t vio_seek(sf_count_t offset, int whence, void *user) {
    pa_decoder *d = user;
    switch (whence) {
    case SEEK_SET: d->position = offset; break;
    case SEEK_CUR: d->position += offset; break;
    case SEEK_END: d->position = wait_for_length(d) + offset; break;
    default: return -1;
    }
    if (d->position < 0) d->position = 0;
    return d->position;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *user) {
    pa_decoder *d = user;
    int aborted = 0;
    long got = pa_spool_read_at(d->spool, d->position, ptr, (size_t)count, &aborted);
    if (got < 0) return 0;
    d->position += got;
    return got;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *user) {
    (void)ptr, (void)count, (void)user;
    return 0;
}

static sf_count_t vio_tell(void *user) { return ((pa_decoder *)user)->position; }

/* ---- opening ---- */

/* Taps of libswresample's windowed-sinc filter for each quality (its default is 32). */
static int quality_to_taps(int quality) {
    switch (quality) {
    case PA_QUALITY_BEST: return 64;
    case PA_QUALITY_MEDIUM: return 32;
    default: return 16;
    }
}

/* libsndfile clamps a WAV or AIFF data chunk that claims more bytes than the
 * file holds, and notes it in its log as "data : N (should be M)". */
static int log_says_truncated(SNDFILE *file) {
    char log[16384];
    sf_command(file, SFC_GET_LOG_INFO, log, sizeof log);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ') line++;
        if ((strncmp(line, "data :", 6) == 0 || strncmp(line, "SSND :", 6) == 0) && strstr(line, "should be"))
            return 1;
    }
    return 0;
}

static void describe_format(pa_decoder *d) {
    SF_FORMAT_INFO major = {.format = d->info.format & SF_FORMAT_TYPEMASK};
    SF_FORMAT_INFO minor = {.format = d->info.format & SF_FORMAT_SUBMASK};
    const char *a = sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 ? major.name : "unknown";
    const char *b = sf_command(NULL, SFC_GET_FORMAT_INFO, &minor, sizeof minor) == 0 ? minor.name : "unknown";
    snprintf(d->format_name, sizeof d->format_name, "%s / %s", a, b);
}

static pa_decoder *finish_open(pa_decoder *d, const char *what, int target_rate, int quality,
                               int allow_truncated, pa_error *err) {
    if (d->info.channels < 1 || d->info.channels > MAX_CHANNELS) {
        pa_set_error(err, PA_ERR_FORMAT, 0, "%s: the header claims %d channels (1 to %d are supported)", what,
                     d->info.channels, MAX_CHANNELS);
        goto fail;
    }
    if (d->info.samplerate < MIN_RATE || d->info.samplerate > MAX_RATE) {
        pa_set_error(err, PA_ERR_FORMAT, 0, "%s: the header claims a sample rate of %d Hz (%d to %d Hz are supported)",
                     what, d->info.samplerate, MIN_RATE, MAX_RATE);
        goto fail;
    }
    if (target_rate < 0 || target_rate > MAX_RATE) {
        pa_set_error(err, PA_ERR_CONFIG, 0, "target sample rate %d Hz is out of range", target_rate);
        goto fail;
    }
    d->target_rate = target_rate == 0 ? d->info.samplerate : target_rate;
    d->allow_truncated = allow_truncated;
    if (d->file) {
        d->declared_short = log_says_truncated(d->file);
        describe_format(d);
        d->interleaved = malloc(sizeof(float) * BLOCK_FRAMES * (size_t)d->info.channels);
    }
    d->mono = malloc(sizeof(float) * BLOCK_FRAMES);
    d->mono_capacity = BLOCK_FRAMES;
    if ((d->file && d->interleaved == NULL) || d->mono == NULL) {
        pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory allocating decode buffers");
        goto fail;
    }
    if (d->target_rate != d->info.samplerate) {
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        int e = swr_alloc_set_opts2(&d->resampler, &mono, AV_SAMPLE_FMT_FLT, d->target_rate, &mono, AV_SAMPLE_FMT_FLT,
                                    d->info.samplerate, 0, NULL);
        if (e >= 0) e = av_opt_set_int(d->resampler, "filter_size", quality_to_taps(quality), 0);
        if (e >= 0) e = swr_init(d->resampler);
        if (e < 0) {
            char words[128];
            av_strerror(e, words, sizeof words);
            pa_set_error(err, PA_ERR_RESAMPLE, e, "cannot create resampler: %s", words);
            goto fail;
        }
    }
    /* Normalise integer formats to [-1, 1) and clip float files that exceed it. */
    if (d->file) sf_command(d->file, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    return d;
fail:
    pa_decoder_free(d);
    return NULL;
}

/* What libsndfile refused, FFmpeg may read. Returns 0 with d->av open and
 * d->info filled, or -1 with *err saying why neither could. */
static int open_with_ffmpeg(pa_decoder *d, const char *what, pa_spool *spool, pa_notice_fn notice, void *context,
                            char *refused, pa_error *err) {
    char why[200];
    size_t n = strlen(refused);
    while (n > 0 && (refused[n - 1] == '.' || refused[n - 1] == ' ')) refused[--n] = 0;
    int code = PA_ERR_OPEN;
    d->av = pa_av_open(spool ? NULL : what, spool, notice, context, &code, why, sizeof why);
    if (d->av == NULL) {
        if (code == PA_ERR_OPEN)
            pa_set_error(err, PA_ERR_OPEN, 0, "%s: not audio Parley can read (libsndfile: %s; FFmpeg: %s)", what,
                         refused, why);
        else if (code == PA_ERR_ABORTED)
            pa_set_error(err, PA_ERR_ABORTED, 0, "%s: the byte stream was aborted before its header arrived", what);
        else
            pa_set_error(err, code, 0, "%s: %s", what, why);
        return -1;
    }
    int64_t frames = -1;
    memset(&d->info, 0, sizeof d->info);
    pa_av_describe(d->av, &d->info.samplerate, &d->info.channels, &frames, &d->av_length_is_the_streams,
                   d->format_name, sizeof d->format_name);
    d->info.frames = frames;
    return 0;
}

pa_decoder *pa_decoder_open_path(const char *path, int target_rate, int quality, int allow_truncated,
                                 pa_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        pa_set_error(err, PA_ERR_OPEN, e, "%s: %s", path, strerror(e));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        pa_set_error(err, PA_ERR_OPEN, EISDIR, "%s: is a directory, not an audio file", path);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        pa_set_error(err, PA_ERR_EMPTY, 0, "%s: the file is empty", path);
        return NULL;
    }
    pa_decoder *d = calloc(1, sizeof *d);
    if (d == NULL) {
        pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory");
        return NULL;
    }
    char refused[160];
    pthread_mutex_lock(&open_lock);
    d->file = sf_open(path, SFM_READ, &d->info);
    if (d->file == NULL) snprintf(refused, sizeof refused, "%s", sf_strerror(NULL));
    pthread_mutex_unlock(&open_lock);
    if (d->file == NULL && open_with_ffmpeg(d, path, NULL, NULL, NULL, refused, err) != 0) {
        free(d);
        return NULL;
    }
    return finish_open(d, path, target_rate, quality, allow_truncated, err);
}

pa_decoder *pa_decoder_open_spool(pa_spool *spool, int target_rate, int quality, int allow_truncated,
                                  pa_error *err) {
    return pa_decoder_open_spool_notify(spool, target_rate, quality, allow_truncated, NULL, NULL, err);
}

pa_decoder *pa_decoder_open_spool_notify(pa_spool *spool, int target_rate, int quality, int allow_truncated,
                                         pa_notice_fn notice, void *context, pa_error *err) {
    pa_decoder *d = calloc(1, sizeof *d);
    if (d == NULL) {
        pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory");
        return NULL;
    }
    d->spool = spool;
    /* Wait for enough bytes to parse a header (or the whole stream if shorter). */
    char probe[1];
    int aborted = 0;
    long got = pa_spool_read_at(spool, 4095, probe, 1, &aborted);
    if (aborted) {
        pa_set_error(err, PA_ERR_ABORTED, 0, "upload: the byte stream was aborted before its header arrived");
        free(d);
        return NULL;
    }
    if (got == 0 && pa_spool_length(spool) == 0) {
        pa_set_error(err, PA_ERR_EMPTY, 0, "upload: the stream holds no bytes");
        free(d);
        return NULL;
    }
    SF_VIRTUAL_IO io = {vio_filelen, vio_seek, vio_read, vio_write, vio_tell};
    char refused[160];
    d->file = sf_open_virtual(&io, SFM_READ, &d->info, d);
    if (d->file == NULL) {
        pthread_mutex_lock(&open_lock);
        snprintf(refused, sizeof refused, "%s", sf_strerror(NULL));
        pthread_mutex_unlock(&open_lock);
    }
    if (d->file == NULL && open_with_ffmpeg(d, "upload", spool, notice, context, refused, err) != 0) {
        free(d);
        return NULL;
    }
    return finish_open(d, "upload", target_rate, quality, allow_truncated, err);
}

void pa_decoder_info(const pa_decoder *d, pa_source_info *out) {
    out->frames = d->info.frames >= 0 && d->info.frames < INT64_MAX / 2 ? d->info.frames : -1;
    out->source_rate = d->info.samplerate;
    out->channels = d->info.channels;
    out->target_rate = d->target_rate;
    out->format = d->info.format;
    snprintf(out->format_name, sizeof out->format_name, "%s", d->format_name);
}

/* ---- reading ---- */

/* Decodes the next source block into d->mono; sets source_done at the end. */
static long decode_block(pa_decoder *d, pa_error *err) {
    sf_count_t n;
    if (d->av) {
        n = pa_av_read(d->av, &d->mono, &d->mono_capacity, d->frames_read, err);
        if (n < 0) return -1;
    } else {
        n = sf_readf_float(d->file, d->interleaved, BLOCK_FRAMES);
        if (n < 0) n = 0;
        int sferr = sf_error(d->file);
        if (sferr != SF_ERR_NO_ERROR) {
            pa_set_error(err, PA_ERR_READ, sferr, "decoding failed after %lld frames: %s", (long long)d->frames_read,
                         sf_strerror(d->file));
            return -1;
        }
    }
    if (n == 0) {
        d->source_done = 1;
        int aborted = 0, finished = 0;
        if (d->spool && pa_spool_is_closed(d->spool, &finished, &aborted) && aborted) {
            pa_set_error(err, PA_ERR_ABORTED, 0, "upload: the byte stream was aborted after %lld frames",
                         (long long)d->frames_read);
            return -1;
        }
        int64_t declared = d->info.frames;
        int short_stream = d->spool && declared > 0 && declared < INT64_MAX / 2 && d->frames_read < declared;
        /* A container's declared duration is approximate (codec delay and padding): short by more
         * than half a second and 1% is data that stops part way. */
        if (d->av) {
            int64_t slack = d->info.samplerate / 2 > declared / 100 ? d->info.samplerate / 2 : declared / 100;
            short_stream = d->av_length_is_the_streams && declared > 0 && d->frames_read + slack < declared;
        }
        if (!d->allow_truncated && (d->declared_short || short_stream)) {
            pa_set_error(err, PA_ERR_TRUNCATED, 0,
                         "truncated: the header declares more audio than the data holds (%lld frames decoded, "
                         "%.1f s)",
                         (long long)d->frames_read, (double)d->frames_read / d->info.samplerate);
            return -1;
        }
        return 0;
    }
    d->frames_read += n;
    if (d->av) return (long)n; /* FFmpeg's side downmixes */
    const int ch = d->info.channels;
    if (ch == 1) {
        memcpy(d->mono, d->interleaved, sizeof(float) * (size_t)n);
    } else {
        const float scale = 1.0f / (float)ch;
        for (sf_count_t i = 0; i < n; i++) {
            float sum = 0;
            for (int c = 0; c < ch; c++) sum += d->interleaved[i * ch + c];
            d->mono[i] = sum * scale;
        }
    }
    return (long)n;
}

long pa_decoder_read(pa_decoder *d, float *out, size_t max, pa_error *err) {
    if (max == 0) return 0;
    if (d->resampler == NULL) {
        size_t written = 0;
        while (written < max) {
            if (d->mono_pos == d->mono_len) {
                if (d->source_done) break;
                long n = decode_block(d, err);
                if (n < 0) return -1;
                d->mono_pos = 0;
                d->mono_len = n;
                if (n == 0) break;
            }
            size_t take = (size_t)(d->mono_len - d->mono_pos);
            if (take > max - written) take = max - written;
            memcpy(out + written, d->mono + d->mono_pos, sizeof(float) * take);
            d->mono_pos += (long)take;
            written += take;
        }
        return (long)written;
    }
    /* Resampling: each decoded block goes through libswresample into `staged`, handed out from
     * there; at the end of the source the filter's tail is flushed. */
    size_t written = 0;
    while (written < max) {
        if (d->staged_pos == d->staged_len) {
            if (d->flushed) break;
            if (d->mono_pos == d->mono_len && !d->source_done) {
                long n = decode_block(d, err);
                if (n < 0) return -1;
                d->mono_pos = 0;
                d->mono_len = n;
            }
            int in = (int)(d->mono_len - d->mono_pos);
            if (in == 0 && !d->source_done) continue;
            int need = swr_get_out_samples(d->resampler, in);
            if (need < 0) need = 0;
            if ((size_t)need + 16 > d->staged_capacity) {
                float *grown = realloc(d->staged, sizeof(float) * ((size_t)need + 16));
                if (grown == NULL) {
                    pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory resampling");
                    return -1;
                }
                d->staged = grown;
                d->staged_capacity = (size_t)need + 16;
            }
            uint8_t *output[1] = {(uint8_t *)d->staged};
            const uint8_t *input[1] = {(const uint8_t *)(d->mono + d->mono_pos)};
            int got = swr_convert(d->resampler, output, (int)d->staged_capacity, in > 0 ? input : NULL, in);
            if (got < 0) {
                char words[128];
                av_strerror(got, words, sizeof words);
                pa_set_error(err, PA_ERR_RESAMPLE, got, "resampling failed: %s", words);
                return -1;
            }
            d->mono_pos = d->mono_len;
            d->staged_pos = 0;
            d->staged_len = got;
            if (in == 0 && got == 0) d->flushed = 1; /* the source ended and the tail is out */
            continue;
        }
        size_t take = (size_t)(d->staged_len - d->staged_pos);
        if (take > max - written) take = max - written;
        memcpy(out + written, d->staged + d->staged_pos, sizeof(float) * take);
        d->staged_pos += (long)take;
        written += take;
    }
    return (long)written;
}

void pa_decoder_free(pa_decoder *d) {
    if (d == NULL) return;
    if (d->file) sf_close(d->file);
    pa_av_free(d->av);
    swr_free(&d->resampler);
    free(d->staged);
    free(d->interleaved);
    free(d->mono);
    free(d);
}

/* ---- writer ---- */

struct pa_writer {
    SNDFILE *file;
};

static int format_for_path(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".flac") == 0) return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    if (dot && strcasecmp(dot, ".ogg") == 0) return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    if (dot && (strcasecmp(dot, ".aiff") == 0 || strcasecmp(dot, ".aif") == 0))
        return SF_FORMAT_AIFF | SF_FORMAT_PCM_16;
    return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
}

pa_writer *pa_writer_open(const char *path, int sample_rate, int format, pa_error *err) {
    SF_INFO info = {.samplerate = sample_rate, .channels = 1, .format = format ? format : format_for_path(path)};
    if (!sf_format_check(&info)) {
        pa_set_error(err, PA_ERR_CONFIG, 0, "%s: libsndfile cannot write this format at %d Hz", path, sample_rate);
        return NULL;
    }
    pa_writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&open_lock);
    w->file = sf_open(path, SFM_WRITE, &info);
    if (w->file == NULL)
        pa_set_error(err, PA_ERR_OPEN, sf_error(NULL), "%s: cannot create (%s)", path, sf_strerror(NULL));
    pthread_mutex_unlock(&open_lock);
    if (w->file == NULL) {
        free(w);
        return NULL;
    }
    /* Clip rather than wrap samples outside [-1, 1] when writing integers. */
    sf_command(w->file, SFC_SET_CLIPPING, NULL, SF_TRUE);
    return w;
}

int pa_writer_write(pa_writer *w, const float *samples, size_t n, pa_error *err) {
    sf_count_t done = sf_write_float(w->file, samples, (sf_count_t)n);
    if (done != (sf_count_t)n) {
        pa_set_error(err, PA_ERR_IO, sf_error(w->file), "write failed: %s", sf_strerror(w->file));
        return -1;
    }
    return 0;
}

int pa_writer_close(pa_writer *w, pa_error *err) {
    if (w == NULL) return 0;
    int e = sf_close(w->file);
    free(w);
    if (e != 0) {
        pa_set_error(err, PA_ERR_IO, e, "closing the file failed: %s", sf_error_number(e));
        return -1;
    }
    return 0;
}
