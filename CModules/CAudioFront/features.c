/* Per-frame spectral features: one FFTW r2c plan per extractor, created once
 * and reused for every frame; pitch from a zero-padded autocorrelation. */
#include "internal.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FFTW's planner is not thread-safe; fftwf_execute is. */
#define PITCH_BAND_HZ 1500.0
#define NOISE_RISE_DB_PER_S 1.0f
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

/* FFTW's wisdom file (guarded by planner_lock): measuring the plans takes about a third of a
 * second, longer than diarizing five minutes of audio, so a process reads them from here;
 * `wisdom_unsaved` says the file lacks what this process has measured. */
static char *wisdom_path;
static int wisdom_unsaved;

int pa_fftw_wisdom_file(const char *path) {
    int read = -1;
    pthread_mutex_lock(&planner_lock);
    free(wisdom_path);
    wisdom_path = path ? strdup(path) : NULL;
    if (wisdom_path) read = fftwf_import_wisdom_from_filename(wisdom_path) ? 0 : -1;
    wisdom_unsaved = wisdom_path && read != 0;
    pthread_mutex_unlock(&planner_lock);
    return read;
}

/* Writes the wisdom file if this process measured something it lacks: to a file of its own
 * first, renamed over the old one, so a reader never sees half a file. Failing to write only
 * means measuring again next time. Called with planner_lock held. */
static void save_wisdom(void) {
    if (!wisdom_path || !wisdom_unsaved) return;
    const size_t size = strlen(wisdom_path) + 32;
    char *temporary = malloc(size);
    if (!temporary) return;
    snprintf(temporary, size, "%s.%ld.tmp", wisdom_path, (long)getpid());
    if (fftwf_export_wisdom_to_filename(temporary) && rename(temporary, wisdom_path) == 0)
        wisdom_unsaved = 0;
    else
        unlink(temporary);
    free(temporary);
}

/* A plan from the wisdom if it has one (instant), else measured (and the wisdom to be saved). */
static fftwf_plan plan_r2c(int n, float *in, fftwf_complex *out) {
    fftwf_plan p = fftwf_plan_dft_r2c_1d(n, in, out, FFTW_MEASURE | FFTW_WISDOM_ONLY);
    if (p) return p;
    wisdom_unsaved = 1;
    return fftwf_plan_dft_r2c_1d(n, in, out, FFTW_MEASURE);
}

static fftwf_plan plan_c2r(int n, fftwf_complex *in, float *out) {
    fftwf_plan p = fftwf_plan_dft_c2r_1d(n, in, out, FFTW_MEASURE | FFTW_WISDOM_ONLY);
    if (p) return p;
    wisdom_unsaved = 1;
    return fftwf_plan_dft_c2r_1d(n, in, out, FFTW_MEASURE);
}

typedef struct {
    int first_bin, last_bin;  /* inclusive range of FFT bins with non-zero weight */
    float *weights;           /* last_bin - first_bin + 1 weights */
} mel_filter;

struct pa_extractor {
    pa_feature_config config;
    int n_bins;
    float *window;     /* n_fft: periodic Hann of win_length, centred, zeros around */
    float *frame;      /* n_fft, FFTW-aligned input */
    fftwf_complex *spectrum;
    fftwf_plan plan;
    float *power;      /* n_bins */
    float *mel;        /* n_mels, dB */
    float *mel_power;  /* n_mels, before the log */
    float *noise;      /* n_mels: tracked noise power per band, for noise compensation */
    int noise_ready;
    mel_filter *filters;
    float *dct;        /* n_mfcc x n_mels */
    /* pitch */
    int pitch_fft;     /* >= 2 * n_fft, so the autocorrelation does not wrap */
    float *pitch_in;
    fftwf_complex *pitch_spectrum;
    float *pitch_out;
    fftwf_plan pitch_forward, pitch_inverse;
    double *energy_prefix; /* n_fft + 1 */
    int lag_min, lag_max;
    /* incoming samples */
    float *samples;
    size_t capacity, count;
    int64_t first_sample; /* absolute index of samples[0] */
    int64_t total_samples;
    int64_t frames_done;
};

void pa_feature_config_default(pa_feature_config *c) {
    c->sample_rate = 16000;
    c->win_length = 400;
    c->hop_length = 160;
    c->n_fft = 512;
    c->n_mels = 40;
    c->n_mfcc = 20;
    c->fmin = 0;
    c->fmax = 8000;
    c->pitch = 1;
    c->f0_min = 60;
    c->f0_max = 400;
    c->noise_compensation = 1;
    c->speech_fmin = 100;
}

/* Slaney's mel scale, as librosa uses by default (htk=False). */
static double hz_to_mel(double hz) {
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return hz < min_log_hz ? hz / f_sp : min_log_mel + log(hz / min_log_hz) / logstep;
}

static double mel_to_hz(double mel) {
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return mel < min_log_mel ? mel * f_sp : min_log_hz * exp(logstep * (mel - min_log_mel));
}

/* The triangle of mel band m (edges left, centre, right in Hz) at FFT bin k. */
static double triangle(const pa_feature_config *c, int k, double left, double centre, double right) {
    const double f = (double)k * c->sample_rate / c->n_fft;
    return fmax(0.0, fmin((f - left) / (centre - left), (right - f) / (right - centre)));
}

static int build_filters(pa_extractor *x) {
    const pa_feature_config *c = &x->config;
    const int n = c->n_mels;
    double *edges = malloc(sizeof(double) * (size_t)(n + 2));
    if (edges == NULL) return -1;
    const double lo = hz_to_mel(c->fmin), hi = hz_to_mel(c->fmax);
    for (int i = 0; i < n + 2; i++) edges[i] = mel_to_hz(lo + (hi - lo) * i / (n + 1));
    x->filters = calloc((size_t)n, sizeof(mel_filter));
    if (x->filters == NULL) {
        free(edges);
        return -1;
    }
    for (int m = 0; m < n; m++) {
        const double left = edges[m], centre = edges[m + 1], right = edges[m + 2];
        const double norm = 2.0 / (right - left); /* Slaney area normalisation */
        int first = -1, last = -1;
        for (int k = 0; k < x->n_bins; k++) {
            if (triangle(c, k, left, centre, right) > 0) {
                if (first < 0) first = k;
                last = k;
            }
        }
        if (first < 0) first = last = 0; /* a band narrower than one bin stays empty */
        mel_filter *filter = &x->filters[m];
        filter->first_bin = first;
        filter->last_bin = last;
        filter->weights = calloc((size_t)(last - first + 1), sizeof(float));
        if (filter->weights == NULL) {
            free(edges);
            return -1;
        }
        for (int k = first; k <= last; k++)
            filter->weights[k - first] = (float)(triangle(c, k, left, centre, right) * norm);
    }
    free(edges);
    return 0;
}

static int validate(const pa_feature_config *c, pa_error *err) {
    const char *why = NULL;
    if (c->sample_rate < 1000) why = "sample_rate must be at least 1000 Hz";
    else if (c->win_length < 16) why = "win_length must be at least 16 samples";
    else if (c->hop_length < 1) why = "hop_length must be positive";
    else if (c->n_fft < c->win_length) why = "n_fft must be at least win_length";
    else if (c->n_mels < 1 || c->n_mels > c->n_fft / 2) why = "n_mels must be between 1 and n_fft/2";
    else if (c->n_mfcc < 0 || c->n_mfcc > c->n_mels) why = "n_mfcc must be between 0 and n_mels";
    else if (c->fmin < 0 || c->fmax <= c->fmin || c->fmax > c->sample_rate / 2.0f)
        why = "need 0 <= fmin < fmax <= sample_rate/2";
    else if (!(c->speech_fmin >= 0 && c->speech_fmin < c->sample_rate / 2.0f))
        why = "need 0 <= speech_fmin < sample_rate/2";
    else if (c->pitch && (c->f0_min <= 0 || c->f0_max <= c->f0_min))
        why = "need 0 < f0_min < f0_max";
    else if (c->pitch && c->sample_rate / c->f0_min >= c->n_fft - 8)
        why = "n_fft is too short for the lowest pitch f0_min";
    if (why) {
        pa_set_error(err, PA_ERR_CONFIG, 0, "invalid feature configuration: %s", why);
        return -1;
    }
    return 0;
}

pa_extractor *pa_extractor_new(const pa_feature_config *config, pa_error *err) {
    if (validate(config, err) != 0) return NULL;
    pa_extractor *x = calloc(1, sizeof *x);
    if (x == NULL) goto oom;
    x->config = *config;
    const pa_feature_config *c = &x->config;
    x->n_bins = c->n_fft / 2 + 1;
    x->window = calloc((size_t)c->n_fft, sizeof(float));
    x->frame = fftwf_alloc_real((size_t)c->n_fft);
    x->spectrum = fftwf_alloc_complex((size_t)x->n_bins);
    x->power = malloc(sizeof(float) * (size_t)x->n_bins);
    x->mel = malloc(sizeof(float) * (size_t)c->n_mels);
    x->mel_power = malloc(sizeof(float) * (size_t)c->n_mels);
    x->noise = calloc((size_t)c->n_mels, sizeof(float));
    x->dct = malloc(sizeof(float) * (size_t)(c->n_mfcc * c->n_mels + 1));
    x->capacity = (size_t)c->n_fft * 64;
    x->samples = malloc(sizeof(float) * x->capacity);
    if (!x->window || !x->frame || !x->spectrum || !x->power || !x->mel || !x->mel_power || !x->noise || !x->dct ||
        !x->samples)
        goto oom;
    if (build_filters(x) != 0) goto oom;

    /* Periodic Hann of win_length, centred in n_fft (librosa's pad_center). */
    const int offset = (c->n_fft - c->win_length) / 2;
    for (int i = 0; i < c->win_length; i++)
        x->window[offset + i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / c->win_length));

    /* Orthonormal DCT-II. */
    for (int k = 0; k < c->n_mfcc; k++) {
        const double scale = k == 0 ? sqrt(1.0 / c->n_mels) : sqrt(2.0 / c->n_mels);
        for (int m = 0; m < c->n_mels; m++)
            x->dct[k * c->n_mels + m] = (float)(scale * cos(M_PI * k * (2 * m + 1) / (2.0 * c->n_mels)));
    }

    if (c->pitch) {
        x->pitch_fft = 1;
        while (x->pitch_fft < 2 * c->n_fft) x->pitch_fft *= 2;
        const int pb = x->pitch_fft / 2 + 1;
        x->pitch_in = fftwf_alloc_real((size_t)x->pitch_fft);
        x->pitch_out = fftwf_alloc_real((size_t)x->pitch_fft);
        x->pitch_spectrum = fftwf_alloc_complex((size_t)pb);
        x->energy_prefix = malloc(sizeof(double) * (size_t)(c->n_fft + 1));
        if (!x->pitch_in || !x->pitch_out || !x->pitch_spectrum || !x->energy_prefix) goto oom;
        x->lag_min = (int)floor(c->sample_rate / c->f0_max);
        x->lag_max = (int)ceil(c->sample_rate / c->f0_min);
    }

    pthread_mutex_lock(&planner_lock);
    x->plan = plan_r2c(c->n_fft, x->frame, x->spectrum);
    if (c->pitch) {
        x->pitch_forward = plan_r2c(x->pitch_fft, x->pitch_in, x->pitch_spectrum);
        x->pitch_inverse = plan_c2r(x->pitch_fft, x->pitch_spectrum, x->pitch_out);
    }
    save_wisdom();
    pthread_mutex_unlock(&planner_lock);
    if (!x->plan || (c->pitch && (!x->pitch_forward || !x->pitch_inverse))) {
        pa_set_error(err, PA_ERR_CONFIG, 0, "FFTW could not plan a transform of %d points", c->n_fft);
        pa_extractor_free(x);
        return NULL;
    }
    return x;
oom:
    pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory allocating the feature extractor");
    pa_extractor_free(x);
    return NULL;
}

int pa_extractor_push(pa_extractor *x, const float *samples, size_t n, pa_error *err) {
    /* Drop samples no future frame needs. */
    const int64_t keep_from = x->frames_done * x->config.hop_length;
    if (keep_from > x->first_sample) {
        size_t drop = (size_t)(keep_from - x->first_sample);
        if (drop > x->count) drop = x->count;
        memmove(x->samples, x->samples + drop, sizeof(float) * (x->count - drop));
        x->count -= drop;
        x->first_sample += (int64_t)drop;
    }
    if (x->count + n > x->capacity) {
        size_t cap = x->capacity;
        while (cap < x->count + n) cap *= 2;
        float *grown = realloc(x->samples, sizeof(float) * cap);
        if (grown == NULL) {
            pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory buffering %zu samples", n);
            return -1;
        }
        x->samples = grown;
        x->capacity = cap;
    }
    memcpy(x->samples + x->count, samples, sizeof(float) * n);
    x->count += n;
    x->total_samples += (int64_t)n;
    return 0;
}

size_t pa_extractor_ready(const pa_extractor *x) {
    const int64_t n_fft = x->config.n_fft, hop = x->config.hop_length;
    if (x->total_samples < n_fft) return 0;
    const int64_t available = (x->total_samples - n_fft) / hop + 1;
    return (size_t)(available - x->frames_done);
}

int64_t pa_extractor_frames_done(const pa_extractor *x) { return x->frames_done; }

/* Normalised autocorrelation pitch of one raw frame; returns F0 in Hz or 0. */
static float estimate_pitch(pa_extractor *x, const float *raw, float *voicing) {
    const int n = x->config.n_fft;
    double mean = 0;
    for (int i = 0; i < n; i++) mean += raw[i];
    mean /= n;
    x->energy_prefix[0] = 0;
    for (int i = 0; i < n; i++) {
        const float v = (float)(raw[i] - mean);
        x->pitch_in[i] = v;
        x->energy_prefix[i + 1] = x->energy_prefix[i] + (double)v * v;
    }
    memset(x->pitch_in + n, 0, sizeof(float) * (size_t)(x->pitch_fft - n));
    *voicing = 0;
    if (x->energy_prefix[n] < 1e-11 * n) return 0; /* digital silence (-110 dB) */
    fftwf_execute(x->pitch_forward);
    /* The autocorrelation of the signal below PITCH_BAND_HZ only: the harmonics that carry
     * the period live there, while broadband noise spreads over every bin. Zeroing the
     * upper bins of the power spectrum is that low-pass filter, for free. */
    const int bins = x->pitch_fft / 2 + 1;
    const int band = (int)(PITCH_BAND_HZ * x->pitch_fft / x->config.sample_rate);
    for (int k = 0; k < bins; k++) {
        const float re = x->pitch_spectrum[k][0], im = x->pitch_spectrum[k][1];
        x->pitch_spectrum[k][0] = k <= band ? re * re + im * im : 0;
        x->pitch_spectrum[k][1] = 0;
    }
    fftwf_execute(x->pitch_inverse);
    const double r0 = fmax(1e-12, x->pitch_out[0]);
    /* nccf(lag) = r(lag) / r(0), corrected for the shrinking overlap n - lag. */
#define NCCF(lag) (x->pitch_out[lag] / r0 * n / (double)(n - (lag)))
    int best = -1;
    double best_value = 0;
    for (int lag = x->lag_min; lag <= x->lag_max; lag++) {
        const double v = NCCF(lag);
        if (v > best_value) {
            best_value = v;
            best = lag;
        }
    }
    if (best < 0) return 0;
    /* Octave guard: a period's multiples correlate almost as well as the
     * period itself; prefer the shortest lag that is nearly as good. */
    for (int k = best / x->lag_min; k >= 2; k--) {
        const int centre = (int)lround((double)best / k);
        if (centre - 2 < x->lag_min) continue;
        int local = centre;
        double local_value = -1;
        for (int lag = centre - 2; lag <= centre + 2; lag++) {
            const double v = NCCF(lag);
            if (v > local_value) {
                local_value = v;
                local = lag;
            }
        }
        if (local_value >= 0.88 * best_value) {
            best = local;
            best_value = local_value;
            break;
        }
    }
    /* Parabolic interpolation of the peak. */
    double lag = best;
    if (best > x->lag_min && best < x->lag_max) {
        const double a = NCCF(best - 1), b = best_value, c = NCCF(best + 1);
        const double denom = a - 2 * b + c;
        if (denom < 0) lag = best + 0.5 * (a - c) / denom;
    }
#undef NCCF
    *voicing = (float)fmin(1.0, best_value);
    return (float)(x->config.sample_rate / lag);
}

/* Spectral subtraction in the mel domain, for the MFCC only (log-mel stays as it is):
 * a per-band noise floor follows the band's minima (fast down, slowly up), and twice it
 * is subtracted, keeping at least 5% of the band's power. Broadband noise otherwise fills
 * the spectral valleys that tell one voice from another. */
static void compensate_noise(pa_extractor *x) {
    const int n_mels = x->config.n_mels;
    const float rise = powf(10.0f, NOISE_RISE_DB_PER_S / 10.0f * x->config.hop_length / x->config.sample_rate);
    for (int m = 0; m < n_mels; m++) {
        const float p = x->mel_power[m];
        float n = x->noise[m];
        if (!x->noise_ready) n = p;
        else if (p < n) n = 0.8f * n + 0.2f * p;
        else n *= rise;
        x->noise[m] = n;
        float clean = p - 2.0f * n;
        if (clean < 0.05f * p) clean = 0.05f * p;
        x->mel[m] = 10.0f * log10f(clean > 1e-10f ? clean : 1e-10f);
    }
    x->noise_ready = 1;
}

size_t pa_extractor_pull(pa_extractor *x, size_t max, float *energy, float *speech_energy, float *log_mel,
                         float *mfcc, float *f0, float *voicing) {
    const pa_feature_config *c = &x->config;
    size_t ready = pa_extractor_ready(x);
    if (ready > max) ready = max;
    const int n_fft = c->n_fft, n_mels = c->n_mels, n_mfcc = c->n_mfcc;
    /* The first bin the speech energy counts. */
    const int speech_first = (int)ceil(c->speech_fmin * n_fft / c->sample_rate);
    for (size_t f = 0; f < ready; f++) {
        const int64_t start = (x->frames_done + (int64_t)f) * c->hop_length - x->first_sample;
        const float *raw = x->samples + start;
        double sum_sq = 0;
        for (int i = 0; i < n_fft; i++) {
            const float v = raw[i] * x->window[i];
            x->frame[i] = v;
            sum_sq += (double)v * v;
        }
        if (energy) energy[f] = (float)(10.0 * log10(sum_sq / c->win_length + 1e-10));
        if (log_mel || mfcc || speech_energy) {
            fftwf_execute(x->plan);
            for (int k = 0; k < x->n_bins; k++) {
                const float re = x->spectrum[k][0], im = x->spectrum[k][1];
                x->power[k] = re * re + im * im;
            }
        }
        if (speech_energy) {
            /* The one-sided spectrum's share of the frame's energy (Parseval): bins inside
             * count twice, DC and Nyquist once. */
            double band = 0;
            for (int k = speech_first; k < x->n_bins; k++) band += (k == 0 || k == n_fft / 2 ? 1.0 : 2.0) * x->power[k];
            speech_energy[f] = (float)(10.0 * log10(band / n_fft / c->win_length + 1e-10));
        }
        if (log_mel || mfcc) {
            for (int m = 0; m < n_mels; m++) {
                const mel_filter *filter = &x->filters[m];
                float acc = 0;
                for (int k = filter->first_bin; k <= filter->last_bin; k++)
                    acc += filter->weights[k - filter->first_bin] * x->power[k];
                x->mel_power[m] = acc;
                x->mel[m] = 10.0f * log10f(acc > 1e-10f ? acc : 1e-10f);
            }
            if (log_mel) memcpy(log_mel + f * (size_t)n_mels, x->mel, sizeof(float) * (size_t)n_mels);
            if (c->noise_compensation) compensate_noise(x);
            if (mfcc) {
                float *out = mfcc + f * (size_t)n_mfcc;
                for (int k = 0; k < n_mfcc; k++) {
                    const float *row = x->dct + k * n_mels;
                    float acc = 0;
                    for (int m = 0; m < n_mels; m++) acc += row[m] * x->mel[m];
                    out[k] = acc;
                }
            }
        }
        if (c->pitch && (f0 || voicing)) {
            float v = 0;
            const float hz = estimate_pitch(x, raw, &v);
            if (f0) f0[f] = hz;
            if (voicing) voicing[f] = v;
        }
    }
    x->frames_done += (int64_t)ready;
    return ready;
}

void pa_extractor_free(pa_extractor *x) {
    if (x == NULL) return;
    pthread_mutex_lock(&planner_lock);
    if (x->plan) fftwf_destroy_plan(x->plan);
    if (x->pitch_forward) fftwf_destroy_plan(x->pitch_forward);
    if (x->pitch_inverse) fftwf_destroy_plan(x->pitch_inverse);
    pthread_mutex_unlock(&planner_lock);
    if (x->filters) {
        for (int m = 0; m < x->config.n_mels; m++) free(x->filters[m].weights);
        free(x->filters);
    }
    free(x->window);
    fftwf_free(x->frame);
    fftwf_free(x->spectrum);
    free(x->power);
    free(x->mel);
    free(x->mel_power);
    free(x->noise);
    free(x->dct);
    fftwf_free(x->pitch_in);
    fftwf_free(x->pitch_out);
    fftwf_free(x->pitch_spectrum);
    free(x->energy_prefix);
    free(x->samples);
    free(x);
}
