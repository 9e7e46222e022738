#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pa_set_error(pa_error *err, int code, int library_code, const char *fmt, ...) {
    if (err == NULL) return;
    err->code = code;
    err->library_code = library_code;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, args);
    va_end(args);
    /* Keep the message on one line: libsndfile's texts sometimes end in newlines. */
    for (char *c = err->message; *c; c++) {
        if (*c == '\n' || *c == '\r') *c = ' ';
    }
    size_t len = strlen(err->message);
    while (len > 0 && err->message[len - 1] == ' ') err->message[--len] = '\0';
}
