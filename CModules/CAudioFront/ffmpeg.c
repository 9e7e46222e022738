/* The decoder's second way in: FFmpeg's libraries for the containers and
 * codecs libsndfile does not read (AAC/M4A, MP4/MOV/MKV/WebM, Opus and Vorbis
 * in WebM, WMA, AMR, 3GP...), from a path or from a spool through a custom
 * AVIO context. Delivers the first audio stream as mono float at its own rate;
 * the decoder resamples it like everything else. AMR (phones) is demuxed by
 * FFmpeg and decoded by opencore-amr: FFmpeg's own AMR decoders stop at the
 * first silence a phone sends as comfort noise (DTX), which opencore decodes. */
#include "internal.h"

#include <opencore-amrnb/interf_dec.h>
#include <opencore-amrwb/dec_if.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libswresample/swresample.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    IO_BUFFER = 32768,
    /* Packets the codec refuses in a row before the stream counts as corrupt. */
    MAX_BAD_PACKETS = 64,
};

struct pa_av {
    AVFormatContext *format;
    AVIOContext *io;          /* ours over a spool, or NULL for a path */
    AVCodecContext *codec;
    AVPacket *packet;
    AVFrame *frame;
    SwrContext *convert;      /* any sample format -> interleaved float, same layout and rate */
    float *interleaved;
    int interleaved_capacity; /* frames */
    int stream;
    int channels;
    int draining;
    int bad_packets;
    /* Spool reading. */
    pa_spool *spool;
    int64_t position;
    pa_notice_fn notice;
    void *notice_context;
    int noticed;
    /* AMR through opencore: its decoder state, and whether it is AMR-WB. */
    void *amr;
    int amr_wide;
};

static void describe_av_error(int code, char *out, size_t size) {
    if (av_strerror(code, out, size) < 0) snprintf(out, size, "FFmpeg error %d", code);
}

/* ---- AVIO over a spool ---- */

static void notice_waiting(pa_av *av) {
    if (av->notice == NULL || av->noticed) return;
    av->noticed = 1;
    av->notice(av->notice_context, "waiting for the end of the upload: this file keeps its index at the end, so "
                                   "decoding starts once it has all arrived");
}


static int spool_read(void *opaque, uint8_t *buffer, int size) {
    pa_av *av = opaque;
    int aborted = 0;
    long got = pa_spool_read_at(av->spool, av->position, buffer, (size_t)size, &aborted);
    if (aborted || got < 0) return AVERROR_EXIT;
    if (got == 0) return AVERROR_EOF;
    av->position += got;
    return (int)got;
}

static int64_t spool_seek(void *opaque, int64_t offset, int whence) {
    pa_av *av = opaque;
    int finished = 0, aborted = 0;
    int closed = pa_spool_is_closed(av->spool, &finished, &aborted);
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) {
        int64_t expected = pa_spool_expected_length(av->spool);
        if (expected >= 0) return expected;
        return closed ? pa_spool_length(av->spool) : -1;
    }
    int64_t target;
    switch (whence) {
    case SEEK_SET: target = offset; break;
    case SEEK_CUR: target = av->position + offset; break;
    case SEEK_END: {
        int64_t expected = pa_spool_expected_length(av->spool);
        int64_t length = expected >= 0 ? expected : pa_spool_wait_length(av->spool, &finished, &aborted);
        if (aborted) return AVERROR_EXIT;
        target = length + offset;
        break;
    }
    default: return -1;
    }
    if (target < 0) return -1;
    /* A jump past what has arrived (the cues of a Matroska file at its end, say). */
    if (!closed && target > pa_spool_length(av->spool)) notice_waiting(av);
    av->position = target;
    return target;
}

static uint64_t big_endian(const unsigned char *bytes, int count) {
    uint64_t value = 0;
    for (int i = 0; i < count; i++) value = value << 8 | bytes[i];
    return value;
}

/* An MP4/MOV/3GP/M4A whose media data ('mdat') comes before its index ('moov') cannot be
 * decoded until the index has arrived: walks the top-level boxes among the bytes already
 * here (never waiting) and says so when 'mdat' comes first. */
static void notice_if_index_at_end(pa_av *av) {
    int64_t here = pa_spool_length(av->spool), offset = 0;
    for (int boxes = 0; boxes < 64 && offset + 16 <= here; boxes++) {
        unsigned char head[16];
        int aborted = 0;
        if (pa_spool_read_at(av->spool, offset, head, sizeof head, &aborted) != (long)sizeof head) return;
        if (boxes == 0 && memcmp(head + 4, "ftyp", 4) != 0) return; /* not an MP4 */
        uint64_t size = big_endian(head, 4);
        if (size == 1) size = big_endian(head + 8, 8);
        if (memcmp(head + 4, "moov", 4) == 0) return;
        if (memcmp(head + 4, "mdat", 4) == 0) {
            notice_waiting(av);
            return;
        }
        if (size < 8) return; /* 0: to the end of the file; else damaged */
        offset += (int64_t)size;
    }
}

/* ---- opening ---- */

/* FFmpeg logs to stderr by default; the front reports through pa_error only. Its
 * error lines are kept per thread: the last one says what an error code does
 * not ("moov atom not found"). */
static _Thread_local char last_log[160];

static void keep_errors(void *object, int level, const char *format, va_list arguments) {
    (void)object;
    if (level > AV_LOG_ERROR) return;
    vsnprintf(last_log, sizeof last_log, format, arguments);
    size_t n = strlen(last_log);
    while (n > 0 && (last_log[n - 1] == '\n' || last_log[n - 1] == '.' || last_log[n - 1] == ' ')) last_log[--n] = 0;
}

static pthread_once_t logging_once = PTHREAD_ONCE_INIT;
static void route_logging(void) { av_log_set_callback(keep_errors); }

/* FFmpeg's words for an error: its message for the code, and the last error it logged. */
static void describe_failure(int code, char *out, size_t size) {
    describe_av_error(code, out, size);
    if (last_log[0]) {
        size_t n = strlen(out);
        snprintf(out + n, size - n, ": %s", last_log);
    }
}

static int first_audio_stream(const AVFormatContext *format) {
    for (unsigned i = 0; i < format->nb_streams; i++)
        if (format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) return (int)i;
    return -1;
}

pa_av *pa_av_open(const char *path, pa_spool *spool, pa_notice_fn notice, void *context, int *code, char *why,
                  size_t why_size) {
    char words[256];
    pthread_once(&logging_once, route_logging);
    last_log[0] = 0;
    pa_av *av = calloc(1, sizeof *av);
    if (av == NULL) {
        *code = PA_ERR_MEMORY;
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    av->stream = -1;
    av->spool = spool;
    av->notice = notice;
    av->notice_context = context;
    *code = PA_ERR_OPEN;
    av->format = avformat_alloc_context();
    if (av->format == NULL) goto memory;
    if (spool) {
        unsigned char *buffer = av_malloc(IO_BUFFER);
        if (buffer == NULL) goto memory;
        av->io = avio_alloc_context(buffer, IO_BUFFER, 0, av, spool_read, NULL, spool_seek);
        if (av->io == NULL) {
            av_free(buffer);
            goto memory;
        }
        av->format->pb = av->io;
        av->format->flags |= AVFMT_FLAG_CUSTOM_IO;
        notice_if_index_at_end(av);
    }
    int e = avformat_open_input(&av->format, spool ? NULL : path, NULL, NULL);
    if (e < 0) {
        /* avformat_open_input frees the context on failure. */
        av->format = NULL;
        if (e == AVERROR_EXIT) *code = PA_ERR_ABORTED;
        describe_failure(e, words, sizeof words);
        snprintf(why, why_size, "%s", words);
        goto fail;
    }
    /* A weak guess on bytes that are not a known container is no audio file. */
    if (av->format->probe_score < AVPROBE_SCORE_RETRY) {
        snprintf(why, why_size, "only a weak guess of %s", av->format->iformat->name);
        goto fail;
    }
    e = avformat_find_stream_info(av->format, NULL);
    if (e < 0) {
        *code = e == AVERROR_EXIT ? PA_ERR_ABORTED : PA_ERR_FORMAT;
        describe_failure(e, words, sizeof words);
        snprintf(why, why_size, "cannot read the streams of this %s file (%s)", av->format->iformat->name, words);
        goto fail;
    }
    av->stream = first_audio_stream(av->format);
    if (av->stream < 0) {
        *code = PA_ERR_FORMAT;
        snprintf(why, why_size, "this %s file has no audio stream", av->format->iformat->name);
        goto fail;
    }
    const AVCodecParameters *parameters = av->format->streams[av->stream]->codecpar;
    const AVCodec *decoder = avcodec_find_decoder(parameters->codec_id);
    if (decoder == NULL) {
        *code = PA_ERR_FORMAT;
        snprintf(why, why_size, "no decoder for its audio (%s)", avcodec_get_name(parameters->codec_id));
        goto fail;
    }
    av->codec = avcodec_alloc_context3(decoder);
    if (av->codec == NULL) goto memory;
    e = avcodec_parameters_to_context(av->codec, parameters);
    if (e >= 0) {
        av->codec->pkt_timebase = av->format->streams[av->stream]->time_base;
        e = avcodec_open2(av->codec, decoder, NULL);
    }
    if (e < 0) {
        *code = PA_ERR_FORMAT;
        describe_av_error(e, words, sizeof words);
        snprintf(why, why_size, "cannot open the %s decoder (%s)", decoder->name, words);
        goto fail;
    }
    /* Discard every other stream at the demuxer (video is never decoded). */
    for (unsigned i = 0; i < av->format->nb_streams; i++)
        if ((int)i != av->stream) av->format->streams[i]->discard = AVDISCARD_ALL;
    av->packet = av_packet_alloc();
    av->frame = av_frame_alloc();
    if (av->packet == NULL || av->frame == NULL) goto memory;
    av->channels = av->codec->ch_layout.nb_channels;
    if ((parameters->codec_id == AV_CODEC_ID_AMR_NB || parameters->codec_id == AV_CODEC_ID_AMR_WB) &&
        av->channels == 1) {
        av->amr_wide = parameters->codec_id == AV_CODEC_ID_AMR_WB;
        av->amr = av->amr_wide ? D_IF_init() : Decoder_Interface_init();
        if (av->amr == NULL) goto memory;
    }
    return av;
memory:
    *code = PA_ERR_MEMORY;
    snprintf(why, why_size, "out of memory");
fail:
    pa_av_free(av);
    return NULL;
}

void pa_av_describe(const pa_av *av, int *rate, int *channels, int64_t *frames, int *frames_are_the_streams,
                    char *name, size_t name_size) {
    const AVStream *stream = av->format->streams[av->stream];
    *rate = av->codec->sample_rate;
    *channels = av->channels;
    *frames = -1;
    *frames_are_the_streams = 0;
    if (*rate > 0) {
        if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
            *frames = av_rescale_q(stream->duration, stream->time_base, (AVRational){1, *rate});
            *frames_are_the_streams = 1;
        } else if (av->format->duration != AV_NOPTS_VALUE && av->format->duration > 0) {
            /* The container's: a video's may be longer than its sound. */
            *frames = av_rescale_q(av->format->duration, AV_TIME_BASE_Q, (AVRational){1, *rate});
        }
    }
    /* A duration guessed from the bitrate (AMR, whose silences take fewer bytes) declares nothing. */
    if (av->format->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) *frames_are_the_streams = 0;
    const char *container = av->format->iformat->long_name ? av->format->iformat->long_name : av->format->iformat->name;
    const char *codec = av->codec->codec->long_name ? av->codec->codec->long_name : av->codec->codec->name;
    snprintf(name, name_size, "%s / %s%s", container, codec, av->amr ? " (opencore-amr)" : "");
}

/* ---- reading ---- */

/* Grows *mono to hold at least `count` samples; 0 when out of memory. */
static int reserve_mono(float **mono, size_t *capacity, size_t count) {
    if (count <= *capacity) return 1;
    float *grown = realloc(*mono, sizeof(float) * count);
    if (grown == NULL) return 0;
    *mono = grown;
    *capacity = count;
    return 1;
}

/* The decoded frame as mono float in *mono (grown as needed); returns its length or -1. */
static long to_mono(pa_av *av, float **mono, size_t *capacity, pa_error *err) {
    AVFrame *frame = av->frame;
    int channels = frame->ch_layout.nb_channels;
    if (channels < 1) channels = av->channels;
    if (av->convert == NULL) {
        AVChannelLayout layout;
        if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || frame->ch_layout.nb_channels < 1)
            av_channel_layout_default(&layout, channels);
        else if (av_channel_layout_copy(&layout, &frame->ch_layout) < 0)
            goto memory;
        int e = swr_alloc_set_opts2(&av->convert, &layout, AV_SAMPLE_FMT_FLT, frame->sample_rate, &layout,
                                    frame->format, frame->sample_rate, 0, NULL);
        av_channel_layout_uninit(&layout);
        if (e >= 0) e = swr_init(av->convert);
        if (e < 0) {
            char words[128];
            describe_av_error(e, words, sizeof words);
            pa_set_error(err, PA_ERR_READ, e, "cannot convert the decoded samples: %s", words);
            return -1;
        }
        av->channels = channels;
    }
    if (channels != av->channels) {
        pa_set_error(err, PA_ERR_READ, 0, "the audio changes from %d to %d channels part way", av->channels, channels);
        return -1;
    }
    int n = frame->nb_samples;
    if (n > av->interleaved_capacity) {
        float *grown = realloc(av->interleaved, sizeof(float) * (size_t)n * (size_t)channels);
        if (grown == NULL) goto memory;
        av->interleaved = grown;
        av->interleaved_capacity = n;
    }
    if (!reserve_mono(mono, capacity, (size_t)n)) goto memory;
    uint8_t *out[1] = {(uint8_t *)av->interleaved};
    int got = swr_convert(av->convert, out, n, (const uint8_t **)frame->extended_data, n);
    if (got < 0) {
        pa_set_error(err, PA_ERR_READ, got, "cannot convert the decoded samples");
        return -1;
    }
    if (channels == 1) {
        memcpy(*mono, av->interleaved, sizeof(float) * (size_t)got);
    } else {
        const float scale = 1.0f / (float)channels;
        for (int i = 0; i < got; i++) {
            float sum = 0;
            for (int c = 0; c < channels; c++) sum += av->interleaved[i * channels + c];
            (*mono)[i] = sum * scale;
        }
    }
    return got;
memory:
    pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory decoding");
    return -1;
}

/* The next packet of the audio stream in av->packet: 1; 0 at the end (or where the data
 * stops part way: the decoder checks the length declared); -1 with *err filled. */
static int next_packet(pa_av *av, int64_t frames_so_far, pa_error *err) {
    char words[128];
    for (;;) {
        int e = av_read_frame(av->format, av->packet);
        if (e == AVERROR_EXIT || (e < 0 && av->format->pb && av->format->pb->error == AVERROR_EXIT)) {
            pa_set_error(err, PA_ERR_ABORTED, 0, "upload: the byte stream was aborted after %lld frames",
                         (long long)frames_so_far);
            return -1;
        }
        if (e == AVERROR_EOF || (e < 0 && av->format->pb && avio_feof(av->format->pb))) return 0;
        if (e < 0) {
            describe_av_error(e, words, sizeof words);
            pa_set_error(err, PA_ERR_READ, e, "reading failed after %lld frames: %s", (long long)frames_so_far, words);
            return -1;
        }
        if (av->packet->stream_index == av->stream) return 1;
        av_packet_unref(av->packet);
    }
}

/* Bytes after the header byte of an AMR frame in the storage format (RFC 4867), by its frame
 * type, as opencore-amr reads them; -1 for the types that do not occur. */
static const int amr_nb_sizes[16] = {12, 13, 15, 17, 19, 20, 26, 31, 5, 6, 5, 5, 0, 0, 0, 0};
static const int amr_wb_sizes[16] = {17, 23, 32, 36, 40, 46, 50, 58, 60, 5, -1, -1, -1, -1, 0, 0};

/* AMR: every frame of the next packet (one for a .amr file, several in a 3GP sample), 160
 * samples at 8 kHz or 320 at 16 kHz each. A frame cut short at the end is left out. */
static long amr_read(pa_av *av, float **mono, size_t *capacity, int64_t frames_so_far, pa_error *err) {
    const int per_frame = av->amr_wide ? 320 : 160;
    const int *sizes = av->amr_wide ? amr_wb_sizes : amr_nb_sizes;
    for (;;) {
        int got = next_packet(av, frames_so_far, err);
        if (got <= 0) return got;
        const uint8_t *data = av->packet->data;
        int left = av->packet->size;
        /* At most as many frames as there are bytes. */
        if (!reserve_mono(mono, capacity, (size_t)left * (size_t)per_frame)) {
            av_packet_unref(av->packet);
            pa_set_error(err, PA_ERR_MEMORY, 0, "out of memory decoding");
            return -1;
        }
        long n = 0;
        short pcm[320];
        while (left > 0) {
            int size = sizes[(data[0] >> 3) & 0x0f];
            if (size < 0 || 1 + size > left) break;
            if (av->amr_wide)
                D_IF_decode(av->amr, data, pcm, _good_frame);
            else
                Decoder_Interface_Decode(av->amr, data, pcm, 0);
            for (int i = 0; i < per_frame; i++) (*mono)[n + i] = (float)pcm[i] * (1.0f / 32768.0f);
            n += per_frame;
            data += 1 + size;
            left -= 1 + size;
        }
        av_packet_unref(av->packet);
        if (n > 0) {
            av->bad_packets = 0;
            return n;
        }
        /* A packet with no whole frame: damaged, skipped unless the damage goes on. */
        if (++av->bad_packets > MAX_BAD_PACKETS) {
            pa_set_error(err, PA_ERR_READ, 0, "decoding failed after %lld frames: %d damaged packets in a row",
                         (long long)frames_so_far, av->bad_packets);
            return -1;
        }
    }
}

long pa_av_read(pa_av *av, float **mono, size_t *capacity, int64_t frames_so_far, pa_error *err) {
    char words[128];
    if (av->amr) return amr_read(av, mono, capacity, frames_so_far, err);
    for (;;) {
        int e = avcodec_receive_frame(av->codec, av->frame);
        if (e == 0) {
            long n = to_mono(av, mono, capacity, err);
            av_frame_unref(av->frame);
            if (n != 0) return n;
            continue;
        }
        if (e == AVERROR_EOF) return 0;
        if (e != AVERROR(EAGAIN)) {
            describe_av_error(e, words, sizeof words);
            pa_set_error(err, PA_ERR_READ, e, "decoding failed after %lld frames: %s", (long long)frames_so_far, words);
            return -1;
        }
        if (av->draining) return 0;
        int got = next_packet(av, frames_so_far, err);
        if (got < 0) return -1;
        if (got == 0) {
            av->draining = 1;
            avcodec_send_packet(av->codec, NULL);
            continue;
        }
        e = avcodec_send_packet(av->codec, av->packet);
        av_packet_unref(av->packet);
        if (e == AVERROR_INVALIDDATA) {
            /* A damaged packet: skipped, as players do, unless the damage goes on. */
            if (++av->bad_packets > MAX_BAD_PACKETS) {
                pa_set_error(err, PA_ERR_READ, e, "decoding failed after %lld frames: %d damaged packets in a row",
                             (long long)frames_so_far, av->bad_packets);
                return -1;
            }
            continue;
        }
        if (e < 0 && e != AVERROR(EAGAIN)) {
            describe_av_error(e, words, sizeof words);
            pa_set_error(err, PA_ERR_READ, e, "decoding failed after %lld frames: %s", (long long)frames_so_far, words);
            return -1;
        }
        av->bad_packets = 0;
    }
}

void pa_av_free(pa_av *av) {
    if (av == NULL) return;
    if (av->amr) {
        if (av->amr_wide)
            D_IF_exit(av->amr);
        else
            Decoder_Interface_exit(av->amr);
    }
    swr_free(&av->convert);
    av_frame_free(&av->frame);
    av_packet_free(&av->packet);
    avcodec_free_context(&av->codec);
    avformat_close_input(&av->format);
    if (av->io) {
        av_freep(&av->io->buffer);
        avio_context_free(&av->io);
    }
    free(av->interleaved);
    free(av);
}
