#include <opencore-amrnb/interf_dec.h>
#include <opencore-amrwb/dec_if.h>
