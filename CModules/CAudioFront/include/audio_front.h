/*
 * Parley's C audio front: decoding (libsndfile, then FFmpeg for the
 * containers and codecs libsndfile does not read), downmix, band-limited
 * resampling (libswresample), and per-frame spectral features (FFTW).
 *
 * Ownership, for every function below:
 *   - Every pa_*_new / pa_*_open returns an object the caller owns and must
 *     release with the matching pa_*_free, exactly once. They return NULL on
 *     failure, having freed whatever they had allocated, and fill *err.
 *   - Pointers passed in (paths, sample and byte buffers) are borrowed for the
 *     duration of the call only; the front copies what it keeps.
 *   - Output arrays are allocated and owned by the caller.
 *   - pa_error is a caller-owned value; messages are copied into it, so it
 *     never points into library memory.
 *
 * Threads: objects are not shared between threads, except a pa_spool, whose
 * append/finish/abort may be called from one thread while a decoder reads it
 * on another (that is its purpose). FFTW plans are created and destroyed
 * under a process-wide lock; executing them needs none.
 */
#ifndef PARLEY_AUDIO_FRONT_H
#define PARLEY_AUDIO_FRONT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PA_OK = 0,
    PA_ERR_OPEN = 1,        /* the file cannot be opened or is not audio libsndfile or FFmpeg reads */
    PA_ERR_FORMAT = 2,      /* opened, but unusable (0 channels, absurd rate, no audio stream, no decoder) */
    PA_ERR_READ = 3,        /* decoding failed part way */
    PA_ERR_TRUNCATED = 4,   /* the data ends before the header says it should */
    PA_ERR_RESAMPLE = 5,    /* the resampler failed */
    PA_ERR_CONFIG = 6,      /* invalid parameters passed by the caller */
    PA_ERR_MEMORY = 7,      /* an allocation failed */
    PA_ERR_ABORTED = 8,     /* the byte stream was aborted by its writer */
    PA_ERR_IO = 9,          /* an operating-system I/O call failed */
    PA_ERR_EMPTY = 10       /* the input holds no bytes at all */
} pa_status;

typedef struct {
    int code;           /* a pa_status */
    int library_code;   /* sf_error(), an FFmpeg AVERROR or errno, when one applies; else 0 */
    char message[512];  /* one line, for people; includes libsndfile's or FFmpeg's own words */
} pa_error;

/* ---- Spool: bytes that arrive in chunks, readable while still arriving ---- */

/* A spool stores appended bytes in a file (bounded memory) and lets a decoder
 * on another thread read them as they arrive; reads past the written end
 * block until more bytes come, the spool is finished, or it is aborted. */
typedef struct pa_spool pa_spool;

/* path: where to keep the bytes (kept after free), or NULL for an anonymous
 * temporary file (removed on free). expected_length: total bytes if known
 * (e.g. Content-Length), else -1. */
pa_spool *pa_spool_new(const char *path, int64_t expected_length, pa_error *err);
/* Appends n bytes; returns 0, or -1 with *err filled. Never blocks on readers. */
int pa_spool_append(pa_spool *spool, const void *bytes, size_t n, pa_error *err);
/* No more bytes will come: readers see the end of the stream. */
void pa_spool_finish(pa_spool *spool);
/* The stream is abandoned: blocked and later reads fail with PA_ERR_ABORTED. */
void pa_spool_abort(pa_spool *spool);
int64_t pa_spool_length(pa_spool *spool);
/* Free only after every decoder reading this spool has been freed. */
void pa_spool_free(pa_spool *spool);

/* ---- Decoder: any format libsndfile or FFmpeg reads -> mono float at target_rate ----
 * libsndfile is tried first (WAV, FLAC, Ogg Vorbis/Opus, AIFF, MP3...); FFmpeg's
 * libraries read the rest (AAC/M4A, MP4/MOV/MKV/WebM, Opus in WebM, WMA, AMR,
 * 3GP...), taking the first audio stream of a file that also has video. */

typedef struct pa_decoder pa_decoder;

typedef struct {
    int64_t frames;        /* frames at the source rate the header declares; -1 unknown */
    int source_rate;
    int channels;
    int target_rate;
    int format;            /* libsndfile SF_FORMAT_* value; 0 when FFmpeg decodes */
    char format_name[96];  /* e.g. "WAV (Microsoft) / Signed 16 bit PCM", "QuickTime / MOV / AAC (Advanced Audio Coding)" */
} pa_source_info;

enum { PA_QUALITY_BEST = 0, PA_QUALITY_MEDIUM = 1, PA_QUALITY_FASTEST = 2 };

/* Opens a file. target_rate 0 keeps the source rate. quality: PA_QUALITY_*,
 * the length of libswresample's sinc filter used when the rates differ.
 * allow_truncated: 0 makes a file shorter than its header declares an error
 * (PA_ERR_TRUNCATED at the end of the data); 1 decodes what is there. */
pa_decoder *pa_decoder_open_path(const char *path, int target_rate, int quality, int allow_truncated,
                                 pa_error *err);
/* Opens a spool (borrowed: it must outlive the decoder). Blocks until the
 * header has arrived. Same parameters as pa_decoder_open_path. */
pa_decoder *pa_decoder_open_spool(pa_spool *spool, int target_rate, int quality, int allow_truncated,
                                  pa_error *err);
/* Called on the decoding thread with a one-line message for people. */
typedef void (*pa_notice_fn)(void *context, const char *message);
/* pa_decoder_open_spool, and `notice` (with `context`) is called once if the
 * decoder has to wait for the end of the upload before it can decode (an MP4
 * whose index is at the end). `context` must stay valid while the decoder
 * lives. */
pa_decoder *pa_decoder_open_spool_notify(pa_spool *spool, int target_rate, int quality, int allow_truncated,
                                         pa_notice_fn notice, void *context, pa_error *err);
void pa_decoder_info(const pa_decoder *decoder, pa_source_info *out);
/* Reads up to max mono samples at the target rate into out (caller-owned).
 * Returns the count, 0 at the end of the stream, or -1 with *err filled.
 * On a spool it blocks until bytes arrive. */
long pa_decoder_read(pa_decoder *decoder, float *out, size_t max, pa_error *err);
void pa_decoder_free(pa_decoder *decoder);

/* ---- Writer: mono float -> a file (WAV, FLAC, Ogg Vorbis by extension) ---- */

typedef struct pa_writer pa_writer;
/* format: libsndfile SF_FORMAT_* major|minor; 0 picks from the extension
 * (.wav 16-bit PCM, .flac 16-bit, .ogg Vorbis, .aiff 16-bit). */
pa_writer *pa_writer_open(const char *path, int sample_rate, int format, pa_error *err);
int pa_writer_write(pa_writer *writer, const float *samples, size_t n, pa_error *err);
/* Closes and frees; returns 0 or -1 with *err filled (the file may be incomplete). */
int pa_writer_close(pa_writer *writer, pa_error *err);

/* ---- Features: STFT -> log energy, log-mel, MFCC, pitch, incrementally ---- */

typedef struct {
    int sample_rate;  /* Hz, default 16000 */
    int win_length;   /* analysis window in samples, default 400 (25 ms) */
    int hop_length;   /* samples between frames, default 160 (10 ms) */
    int n_fft;        /* FFT size >= win_length, default 512; the window sits centred in it */
    int n_mels;       /* mel bands, default 40 */
    int n_mfcc;       /* cepstral coefficients kept, default 20 (<= n_mels) */
    float fmin;       /* lowest mel edge in Hz, default 0 */
    float fmax;       /* highest mel edge in Hz, default sample_rate / 2 */
    int pitch;        /* 1: also estimate F0 and voicing per frame; default 1 */
    float f0_min;     /* Hz, default 60 */
    float f0_max;     /* Hz, default 400 */
    int noise_compensation; /* 1: MFCC from noise-subtracted mel power (log-mel stays raw); default 1 */
    float speech_fmin; /* Hz: the speech energy counts the spectrum from here up; default 100 */
} pa_feature_config;

void pa_feature_config_default(pa_feature_config *config);

/* Frame i covers samples [i*hop, i*hop + n_fft): the framing of librosa with
 * center=False, so frame i is centred at i*hop + n_fft/2.
 *   energy:  10*log10(mean square of the windowed frame + 1e-10), dB
 *   speech energy: the same of the frame's spectrum from speech_fmin Hz up (Parseval: with
 *            speech_fmin 0 it is the energy); rumble, handling thumps and hum lie below
 *   log-mel: 10*log10(max(1e-10, mel power)), Slaney mel scale and area
 *            normalisation (librosa's defaults), power spectrum of a periodic
 *            Hann window
 *   MFCC:    orthonormal DCT-II of the log-mel, first n_mfcc (with noise_compensation,
 *            of the log of the mel power less twice a tracked per-band noise floor)
 *   f0:      Hz from the normalised autocorrelation of the frame, with an
 *            octave-error guard; 0 where the frame is unvoiced
 *   voicing: the normalised autocorrelation peak, 0..1 */
typedef struct pa_extractor pa_extractor;

/* Keeps FFTW's measured plans (its wisdom) in a file between runs: reads it now, and writes it
 * whenever an extractor had to measure a plan the file lacked (written whole, then renamed).
 * NULL stops using a file. Returns 0 if the file was read, -1 if it was missing or not FFTW
 * wisdom (the plans are then measured and the file written anew). */
int pa_fftw_wisdom_file(const char *path);

pa_extractor *pa_extractor_new(const pa_feature_config *config, pa_error *err);
/* Copies n samples in; returns 0 or -1 (memory). */
int pa_extractor_push(pa_extractor *extractor, const float *samples, size_t n, pa_error *err);
/* Frames that can be pulled now. */
size_t pa_extractor_ready(const pa_extractor *extractor);
/* Computes up to max ready frames into caller-owned arrays sized max (energy,
 * speech_energy, f0, voicing), max*n_mels (log_mel) and max*n_mfcc (mfcc), row-major by
 * frame. Any output may be NULL to skip it (f0/voicing need config.pitch).
 * Returns the number of frames written. */
size_t pa_extractor_pull(pa_extractor *extractor, size_t max, float *energy, float *speech_energy, float *log_mel,
                         float *mfcc, float *f0, float *voicing);
/* Total frames pulled so far. */
int64_t pa_extractor_frames_done(const pa_extractor *extractor);
void pa_extractor_free(pa_extractor *extractor);

#ifdef __cplusplus
}
#endif

#endif
