#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>

/* cmd_ln_init is variadic, which Swift cannot call: this builds the decoder's
   configuration from the three model paths. Logging goes to the file given
   (/dev/null to keep it quiet). The caller frees the result with cmd_ln_free_r. */
static inline cmd_ln_t *parley_ps_config(const char *hmm, const char *lm, const char *dict, const char *logfn) {
    return cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict, "-logfn", logfn, NULL);
}
